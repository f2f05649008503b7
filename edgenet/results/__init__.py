"""Results: the ``edgenet.result/1`` schema every command writes and reads.

:mod:`.schema` defines the records and their files (JSON lines, CSV); :mod:`.records` reads them into
typed, frozen views (units in the field names) and holds the queries every reader shares; :mod:`.table`
prints tables for people. Only this folder reads raw record dictionaries; everything else works with the
typed views it exports.
"""

from .records import (
    PERCENTILES,
    STATS,
    AccuracyIndex,
    BenchRecord,
    ConvertRecord,
    DeviceInfo,
    EvalRecord,
    Latency,
    ModelInfo,
    Record,
    SettingKey,
    accuracy_index,
    as_record,
    as_records,
    bench_group,
    fraction_from_stored,
    latest,
    latest_by,
    usable_bench,
    variant_label,
    variant_of,
    with_model_path,
)
from .schema import (
    FIELDS,
    KINDS,
    NESTED_FIELDS,
    SCHEMA,
    RecordError,
    append_records,
    check_fields,
    flatten_record,
    make_record,
    parse_records,
    parse_reply,
    read_records,
    records_to_csv,
    validate_record,
    write_csv,
    write_records,
)

__all__ = [
    "FIELDS", "KINDS", "NESTED_FIELDS", "SCHEMA", "RecordError", "append_records", "check_fields", "flatten_record", "make_record",
    "parse_records", "parse_reply", "read_records", "validate_record", "records_to_csv", "write_csv", "write_records",
    # typed views and queries
    "PERCENTILES", "STATS", "AccuracyIndex", "BenchRecord", "ConvertRecord", "DeviceInfo", "EvalRecord", "Latency", "ModelInfo", "Record",
    "SettingKey", "accuracy_index", "as_record", "as_records", "bench_group", "fraction_from_stored", "latest",
    "latest_by", "usable_bench", "variant_label", "variant_of", "with_model_path",
]
