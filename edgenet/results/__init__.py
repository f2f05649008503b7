"""Results: the ``edgenet.result/1`` schema every command writes and reads.

:mod:`.schema` defines the records and their files (JSON lines, CSV). Only this folder reads raw record
dictionaries; everything else works with the typed views it exports.
"""

from .schema import (
    FIELDS,
    KINDS,
    NESTED_FIELDS,
    SCHEMA,
    append_records,
    flatten_record,
    make_record,
    parse_records,
    read_records,
    records_to_csv,
    write_csv,
    write_records,
)

__all__ = [
    "FIELDS", "KINDS", "NESTED_FIELDS", "SCHEMA", "append_records", "flatten_record", "make_record", "parse_records",
    "read_records", "records_to_csv", "write_csv", "write_records",
]
