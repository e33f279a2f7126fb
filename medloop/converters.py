"""URL converters. ``id`` accepts at most 18 digits so that an id never overflows a 64-bit
database column (which would otherwise surface as a server error)."""


class IdConverter:
    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)
