"""Identity and authorization: who is calling, and the one gate that decides what they may do."""
