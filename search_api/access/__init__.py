"""What a principal may see and how much it may ask.

    allowed.py  its allowed set of chunk ids today (grants, expiry, act-as, folder filters):
                the only place rights are evaluated
    budgets.py  request budgets per principal, and refused sign-ins per address

May import: errors, settings, identity
"""
