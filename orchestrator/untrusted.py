"""Text and files from outside (ARM, the config, plan and target files, arguments) are untrusted.

`clean` is the one sanitizer for such text wherever it is shown: it replaces every character that can
steer a terminal or hide what is shown (C0/C1 controls, DEL, bidirectional overrides, line and paragraph
separators, and the lone surrogates Python uses for bytes that are not UTF-8) with a visible escape such
as `\\x1b`. An escape sequence is thereby defanged: its ESC is shown, the rest is plain text. The same
function, in JSON mode, makes a JSON document ASCII-safe for controls (`\\u001b`), which is equivalent
JSON because such characters can only occur inside strings.

`read_regular_file` reads an input file with a size cap, and only if it is a regular file: a device such
as /dev/zero, a FIFO or a directory is refused before a byte is read (O_NONBLOCK: a FIFO with no
writer would otherwise block the open).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

# Tab and newline stay (multi-line messages, tables); single_line=True escapes newlines too.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_UNSAFE_LINE = re.compile(f"[\n\t{_UNSAFE.pattern[1:-1]}]")


def _visible(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, as os.fsdecode / argv surrogate-escape it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _json_escape(char: str) -> str:
    return f"\\u{ord(char):04x}"


def clean(text: str, *, single_line: bool = False, json: bool = False) -> str:
    """`text` with every control, bidi override and undecodable byte replaced by a visible escape.

    `single_line`: newlines and tabs too (one error line stays one line). `json`: `\\uXXXX` escapes,
    for a serialized JSON document (its own newlines are whitespace between tokens and stay).
    """
    if json:
        return _UNSAFE.sub(lambda m: _json_escape(m.group()), text)
    pattern = _UNSAFE_LINE if single_line else _UNSAFE
    return pattern.sub(lambda m: _visible(m.group()), text)


def is_clean(text: str) -> bool:
    return _UNSAFE.search(text) is None


class UnreadableFile(Exception):
    """Why an input file was not read; the caller names the file and raises its own InputError."""


def read_regular_file(path: Path, *, limit: int) -> bytes:
    """The bytes of `path` if it is a regular file of at most `limit` bytes; else `UnreadableFile`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise UnreadableFile("cannot read: no such file") from None
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableFile("is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile("not a regular file (a device, FIFO or socket); give a file")
        if info.st_size > limit:
            raise UnreadableFile(f"too large ({info.st_size} bytes; the limit is {limit})")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:  # grew while being read
        raise UnreadableFile(f"too large (over {limit} bytes)")
    return data
