"""The ``unroll`` command line: click commands, thin over the library."""

__all__: list[str] = []
