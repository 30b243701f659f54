"""The management plane: `/api/v1/...`."""
