"""Files no reader may choke on: a directory, a device that never ends, bytes that are not UTF-8."""

from __future__ import annotations

from pathlib import Path

KINDS = ("dir", "device", "latin1")

#: Where the bad byte of the "latin1" file is: line 2, column 17 (the ``\xe9`` of ``café``).
BAD_BYTE_AT = (2, 17)


def unreadable(tmp_path: Path, kind: str, first_line: bytes) -> tuple[str, str]:
    """``(path, fragment of the expected message)`` for ``kind`` in :data:`KINDS`.

    The "latin1" file is ``first_line`` (valid) and then a JSON line with a Latin-1 byte at
    :data:`BAD_BYTE_AT`, so a reader that reads line by line would have accepted the first.
    """
    if kind == "dir":
        return str(tmp_path), "it is a directory"
    if kind == "device":
        return "/dev/zero", "not a regular file"
    assert kind == "latin1", kind
    p = tmp_path / "latin1.jsonl"
    p.write_bytes(first_line + b'\n{"caption": "caf\xe9"}\n')
    return str(p), f"not valid UTF-8: byte 0xe9 at line {BAD_BYTE_AT[0]}, column {BAD_BYTE_AT[1]}"
