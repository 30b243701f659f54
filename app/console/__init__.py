"""The web console at `/console/`: static ES modules that read `/api/v1` from the browser, and
the one server-side step OpenID Connect sign-in needs (the code-for-token exchange).

Nothing here authorizes anything: every page's data comes from `/api/v1`, which enforces roles;
the console only hides what the caller's role may not do.
"""
