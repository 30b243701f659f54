"""The shared vocabulary: OCI error codes, digests, repository names, media types, byte ranges.

The bottom layer: it imports nothing of Berth's, and every other package may import it.
"""
