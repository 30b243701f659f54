"""The edge: what sits between the socket and the application."""
