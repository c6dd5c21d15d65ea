"""Search API: request -> principal -> allowed set -> search -> passages."""
