"""The `berth` CLI's HTTP side: commands that speak to the management API of a running server
(local or remote) with the credentials saved by `berth login`.

    config.py    where the URL, token and default organization live (mode 0600)
    http.py      the API client: auth, problem JSON into clear errors, pagination, operations
    output.py    tables and JSON
    commands.py  the commands and their argparse wiring
"""
