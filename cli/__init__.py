"""The ``unroll`` command line: click commands, thin over the library."""
