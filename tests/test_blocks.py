import pytest

from edgenet.family.blocks import B0_BLOCKS, BlockArgs, decode_block, make_divisible, round_filters, round_repeats


@pytest.mark.parametrize(
    "value,expected",
    [(32, 32), (35.2, 32), (38.4, 40), (36, 40), (4, 8), (44.8, 48), (17.6, 16), (19.2, 24), (1280 * 1.1, 1408)],
)
def test_make_divisible(value, expected):
    assert make_divisible(value) == expected


def test_make_divisible_never_rounds_down_more_than_ten_percent():
    for tenths in range(10, 4000):
        value = tenths / 10
        assert make_divisible(value) >= 0.9 * value
        assert make_divisible(value) % 8 == 0


def test_round_filters_and_repeats():
    assert round_filters(32, 1.0) == 32
    assert round_filters(320, 2.0) == 640
    assert round_filters(16, 1.2) == 24  # 19.2 -> 16 would lose >10%, so 24
    assert round_repeats(3, 1.1) == 4
    assert round_repeats(1, 3.1) == 4
    assert round_repeats(2, 1.0) == 2


def test_b0_table_matches_paper():
    assert [b.filters_out for b in B0_BLOCKS] == [16, 24, 40, 80, 112, 192, 320]
    assert [b.repeats for b in B0_BLOCKS] == [1, 2, 2, 3, 3, 4, 1]
    assert [b.kernel_size for b in B0_BLOCKS] == [3, 3, 5, 3, 5, 5, 3]
    assert [b.strides for b in B0_BLOCKS] == [1, 2, 2, 2, 1, 2, 1]
    assert [b.expand_ratio for b in B0_BLOCKS] == [1, 6, 6, 6, 6, 6, 6]
    assert all(b.se_ratio == 0.25 for b in B0_BLOCKS)


def test_block_string_round_trip():
    for block in B0_BLOCKS:
        assert decode_block(block.encode()) == block
    assert decode_block("r2_k3_s22_e6_i16_o24_se0.25") == BlockArgs(3, 2, 16, 24, 6, 2, 0.25)
    assert decode_block("r1_k5_s11_e6_i8_o8_noskip").id_skip is False


@pytest.mark.parametrize("text", ["", "r2_k3", "r2_k3_s12_e6_i16_o24", "r2_k3_s22_e6_i16_o24_se1.5", "x"])
def test_malformed_block_strings_raise_value_error(text):
    with pytest.raises(ValueError):
        decode_block(text)
