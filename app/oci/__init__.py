"""The data plane: the OCI Distribution API (`/v2/...`)."""
