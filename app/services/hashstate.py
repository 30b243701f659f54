"""SHA-256 whose running state can be saved and resumed in another process.

A chunked upload's chunks may land on any `berth serve` worker or replica. `hashlib` objects
cannot leave their process, so a worker that did not see the previous chunks had to rehash the
upload's bytes from its store before hashing its own: with two workers, every chunked upload was
hashed about twice. OpenSSL's low-level SHA-256 context is a plain, documented struct
(`SHA256_CTX` in <openssl/sha.h>: eight state words, the bit count, the partial block and its
length), stable across OpenSSL releases; saving its bytes with the upload's committed offset lets
the next chunk continue from it wherever it lands. (Distribution does the same with Go's
resumable SHA-256, in `_uploads/<id>/hashstates/`.)

It is the same OpenSSL code hashlib runs, so no speed is lost. Where libcrypto cannot be loaded,
`available` is False and callers fall back to rehashing from the stored bytes.

Correctness does not rest on the saved state: the digest a client names is still compared with
the hash of every byte, and a state that does not belong to the bytes (it cannot: it is written
with the offset in one compare-and-set) could only make a good upload fail its check.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_TAG = b"openssl-sha256-ctx:"
_CTX_SIZE = 112  # sizeof(SHA256_CTX): 8 + 2 + 16 + 2 unsigned ints

try:
    _lib = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
    _init, _update, _final = _lib.SHA256_Init, _lib.SHA256_Update, _lib.SHA256_Final
    _init.argtypes = (ctypes.c_void_p,)
    _update.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
    _final.argtypes = (ctypes.c_char_p, ctypes.c_void_p)
    available = True
except (OSError, AttributeError):  # no libcrypto, or one without the low-level API
    available = False


class ResumableSha256:
    """hashlib-like (`update`, `hexdigest`) with `state()` and `resume(state)`."""

    name = "sha256"

    def __init__(self, _ctx: ctypes.Array | None = None) -> None:
        if not available:
            raise RuntimeError("libcrypto is not available")
        if _ctx is None:
            _ctx = ctypes.create_string_buffer(_CTX_SIZE)
            if _init(_ctx) != 1:
                raise RuntimeError("SHA256_Init failed")
        self._ctx = _ctx

    def update(self, data) -> None:
        pointer: bytes | int | None
        if isinstance(data, bytes):
            pointer, size = data, len(data)  # ctypes passes a bytes object's buffer, uncopied
        else:
            view = memoryview(data).cast("B")
            size = view.nbytes
            if view.readonly:
                pointer = view.tobytes()
            else:
                pointer = ctypes.addressof(ctypes.c_char.from_buffer(view)) if size else None
        if size and _update(self._ctx, pointer, size) != 1:
            raise RuntimeError("SHA256_Update failed")

    def copy(self) -> ResumableSha256:
        return ResumableSha256(ctypes.create_string_buffer(self._ctx.raw, _CTX_SIZE))

    def digest(self) -> bytes:
        out = ctypes.create_string_buffer(32)
        if _final(out, self.copy()._ctx) != 1:  # Final clears its context: finish a copy
            raise RuntimeError("SHA256_Final failed")
        return out.raw

    def hexdigest(self) -> str:
        return self.digest().hex()

    def state(self) -> bytes:
        """The running state, to be stored with the number of bytes hashed so far."""
        return _TAG + self._ctx.raw

    @classmethod
    def resume(cls, state: bytes | None) -> ResumableSha256 | None:
        """The hash a `state()` was taken from, or None when `state` is not one (absent, from
        another format, or libcrypto is missing here)."""
        if not available or not state:
            return None
        state = bytes(state)
        if not state.startswith(_TAG) or len(state) != len(_TAG) + _CTX_SIZE:
            return None
        return cls(ctypes.create_string_buffer(state[len(_TAG) :], _CTX_SIZE))


def new_sha256():
    """A resumable SHA-256 where libcrypto is loadable, else hashlib's."""
    if available:
        return ResumableSha256()
    import hashlib

    return hashlib.sha256()
