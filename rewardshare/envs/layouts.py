"""Grid layouts: which cells are walls.

A :class:`Layout` is an immutable boolean wall map plus a name. Cells are ``(row, col)`` tuples with
``(0, 0)`` at the top-left. Layouts come from a name (``"open"``, ``"four_rooms"``, ``"maze"``) and a size,
or from an ASCII map (``#`` wall, ``.`` free, optional ``S`` start and ``G`` goal markers).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

Cell = tuple[int, int]

LAYOUT_NAMES: tuple[str, ...] = ("open", "four_rooms", "maze")
ASCII_WALL, ASCII_FREE, ASCII_START, ASCII_GOAL = "#", ".", "S", "G"


@dataclass(frozen=True, eq=False)
class Layout:
    """A wall map.

    Attributes:
        name: A stable name, e.g. ``"open-8x8"``, ``"four_rooms-9x9"``, ``"maze-9x9-s0"`` or ``"ascii-1a2b3c4d"``.
        walls: Boolean array of shape ``(height, width)``; ``True`` marks a wall. Read-only.
        start: The ``S`` marker of an ASCII map, else ``None``.
        goal: The ``G`` marker of an ASCII map, else ``None``.
    """

    name: str
    walls: np.ndarray
    start: Cell | None = None
    goal: Cell | None = None
    free_cells: tuple[Cell, ...] = field(init=False)

    def __post_init__(self) -> None:
        walls = np.array(self.walls, dtype=bool)
        walls.flags.writeable = False
        object.__setattr__(self, "walls", walls)
        rows, cols = np.nonzero(~walls)
        object.__setattr__(self, "free_cells", tuple(zip(rows.tolist(), cols.tolist(), strict=True)))

    @property
    def height(self) -> int:
        """Number of rows."""
        return int(self.walls.shape[0])

    @property
    def width(self) -> int:
        """Number of columns."""
        return int(self.walls.shape[1])

    def in_bounds(self, cell: Cell) -> bool:
        """Whether ``cell`` lies inside the grid."""
        return 0 <= cell[0] < self.height and 0 <= cell[1] < self.width

    def is_free(self, cell: Cell) -> bool:
        """Whether ``cell`` is inside the grid and not a wall."""
        return self.in_bounds(cell) and not bool(self.walls[cell])

    def to_ascii(self, marks: dict[Cell, str] | None = None) -> str:
        """Render the wall map as text, one line per row, with optional per-cell marks."""
        marks = marks or {}
        lines = []
        for r in range(self.height):
            row = []
            for c in range(self.width):
                row.append(marks.get((r, c), ASCII_WALL if self.walls[r, c] else ASCII_FREE))
            lines.append("".join(row))
        return "\n".join(lines)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self.name == other.name and np.array_equal(self.walls, other.walls)

    def __hash__(self) -> int:
        return hash((self.name, self.walls.tobytes()))


def open_layout(size: int) -> Layout:
    """An empty ``size x size`` room."""
    return Layout(f"open-{size}x{size}", np.zeros((size, size), dtype=bool))


def four_rooms_layout(size: int) -> Layout:
    """Four rooms separated by a cross of walls with one doorway in each wall segment.

    The cross sits at row/column ``size // 2``; doorways are placed in the middle of each half-wall, so every
    room connects to its two neighbours. Needs ``size >= 5``.
    """
    if size < 5:
        raise ValueError(f"size={size!r} is too small for layout='four_rooms': allowed is size >= 5")
    walls = np.zeros((size, size), dtype=bool)
    mid = size // 2
    walls[mid, :] = True
    walls[:, mid] = True
    # one doorway per half-wall, halfway along it
    walls[mid, mid // 2] = False
    walls[mid, mid + 1 + (size - mid - 1) // 2] = False
    walls[mid // 2, mid] = False
    walls[mid + 1 + (size - mid - 1) // 2, mid] = False
    return Layout(f"four_rooms-{size}x{size}", walls)


def maze_layout(size: int, seed: int | np.random.Generator) -> Layout:
    """A perfect maze (every free cell reachable, no loops) carved by a seeded randomized depth-first search.

    Cells at even coordinates are rooms; the walls between them are knocked down along the search. For an even
    ``size`` the last row and column stay walls, so the playable area is ``(size - 1) x (size - 1)``.

    Args:
        size: Side length, ``>= 3``.
        seed: An int seed (the layout is then named after it) or a generator to draw from.
    """
    if size < 3:
        raise ValueError(f"size={size!r} is too small for layout='maze': allowed is size >= 3")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    walls = np.ones((size, size), dtype=bool)
    rooms = (size + 1) // 2
    visited = np.zeros((rooms, rooms), dtype=bool)
    stack = [(0, 0)]
    visited[0, 0] = True
    walls[0, 0] = False
    while stack:
        r, c = stack[-1]
        options = [
            (r + dr, c + dc)
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))
            if 0 <= r + dr < rooms and 0 <= c + dc < rooms and not visited[r + dr, c + dc]
            and 2 * (r + dr) < size and 2 * (c + dc) < size
        ]
        if not options:
            stack.pop()
            continue
        nr, nc = options[int(rng.integers(len(options)))]
        visited[nr, nc] = True
        walls[2 * nr, 2 * nc] = False
        walls[r + nr, c + nc] = False  # the wall between the two rooms
        stack.append((nr, nc))
    name = f"maze-{size}x{size}-s{seed}" if not isinstance(seed, np.random.Generator) else f"maze-{size}x{size}-h" + (
        hashlib.sha1(walls.tobytes()).hexdigest()[:8]
    )
    return Layout(name, walls)


def parse_ascii(text: str | Sequence[str]) -> Layout:
    """Build a layout from an ASCII map.

    Args:
        text: Rows separated by newlines (or a sequence of rows). ``#`` is a wall, ``.`` free, ``S`` marks the
            start and ``G`` the goal (both free cells, at most one each). Surrounding blank lines and indentation
            are ignored. All rows must have the same length.

    Raises:
        ValueError: On an empty map, ragged rows, unknown characters or repeated markers.
    """
    rows = [line.strip() for line in (text.splitlines() if isinstance(text, str) else text)]
    rows = [line for line in rows if line]
    if not rows:
        raise ValueError("layout: the ASCII map is empty; allowed is rows of '#', '.', 'S', 'G'")
    widths = {len(line) for line in rows}
    if len(widths) != 1:
        raise ValueError(
            f"layout: ASCII map rows have different lengths {sorted(widths)}; all rows must be equally long"
        )
    allowed = {ASCII_WALL, ASCII_FREE, ASCII_START, ASCII_GOAL}
    start = goal = None
    walls = np.zeros((len(rows), len(rows[0])), dtype=bool)
    for r, line in enumerate(rows):
        for c, ch in enumerate(line):
            if ch not in allowed:
                raise ValueError(
                    f"layout: unknown character {ch!r} at row {r}, column {c}; allowed are '#', '.', 'S', 'G'"
                )
            walls[r, c] = ch == ASCII_WALL
            if ch in (ASCII_START, ASCII_GOAL):
                if (start if ch == ASCII_START else goal) is not None:
                    raise ValueError(f"layout: the ASCII map has more than one {ch!r} marker; allowed is at most one")
                if ch == ASCII_START:
                    start = (r, c)
                else:
                    goal = (r, c)
    if walls.all():
        raise ValueError("layout: the ASCII map has no free cell; mark free cells with '.'")
    digest = hashlib.sha1("\n".join(rows).replace(ASCII_START, ".").replace(ASCII_GOAL, ".").encode()).hexdigest()[:8]
    return Layout(f"ascii-{digest}", walls, start=start, goal=goal)


def make_layout(layout: str | Layout, size: int = 8, layout_seed: int | np.random.Generator = 0) -> Layout:
    """Resolve a layout argument.

    Args:
        layout: ``"open"``, ``"four_rooms"``, ``"maze"``, an ASCII map (any string containing a newline or ``#``),
            or a :class:`Layout`.
        size: Side length for named layouts (ignored for ASCII maps and ``Layout`` objects).
        layout_seed: Seed of a ``"maze"``.

    Raises:
        ValueError: For an unknown layout name or a ``size`` below what the layout needs.
    """
    if isinstance(layout, Layout):
        return layout
    if not isinstance(layout, str):
        raise ValueError(
            f"layout={layout!r} is not allowed: use one of {LAYOUT_NAMES}, an ASCII map string or a Layout"
        )
    if "\n" in layout or ASCII_WALL in layout or set(layout) <= set(".SG#"):
        return parse_ascii(layout)
    if layout not in LAYOUT_NAMES:
        raise ValueError(
            f"layout={layout!r} is not allowed: use one of {LAYOUT_NAMES}, an ASCII map string or a Layout"
        )
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 2:
        raise ValueError(f"size={size!r} is not allowed: use an int >= 2")
    size = int(size)
    if layout == "open":
        return open_layout(size)
    if layout == "four_rooms":
        return four_rooms_layout(size)
    return maze_layout(size, layout_seed)
