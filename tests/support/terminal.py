"""What a terminal shows after some output: enough of VT100 for rich's live displays."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"\x1b\[(\??)([\d;]*)([A-Za-z])")


def screen_of(output: str) -> list[str]:
    """The lines a terminal shows after ``output`` (text, \\r, \\n, cursor up, erase line).

    Other escape sequences (colours, showing and hiding the cursor) change nothing here.
    """
    lines: list[list[str]] = [[]]
    row = col = 0
    index = 0
    while index < len(output):
        char = output[index]
        match = _CONTROL.match(output, index)
        if match:
            private, number, command = match.groups()
            if not private and command == "A":
                row = max(0, row - int(number or 1))
            elif not private and command == "K":
                lines[row] = []
            index = match.end()
            continue
        if char == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append([])
        elif char == "\r":
            col = 0
        else:
            line = lines[row]
            line.extend(" " * (col - len(line)))
            line[col : col + 1] = [char]
            col += 1
        index += 1
    return ["".join(line).rstrip() for line in lines]
