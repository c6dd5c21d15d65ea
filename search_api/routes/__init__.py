"""HTTP routes, one module per surface; each is thin and goes principal -> allowed set -> search."""
