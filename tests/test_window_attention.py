import torch

from freqnet.archs.window_attention import (
    MASKED, WindowAttention, pair_mask, relative_position_index, window_labels, window_partition, window_reverse)


def test_relative_position_index_hand_checked_2x2():
    # tokens (row, col): 0=(0,0) 1=(0,1) 2=(1,0) 3=(1,1); index = (dr+1)*3 + (dc+1), dr = r_q - r_k
    expected = torch.tensor([
        [4, 3, 1, 0],
        [5, 4, 2, 1],
        [7, 6, 4, 3],
        [8, 7, 5, 4],
    ])
    assert torch.equal(relative_position_index(2), expected)


def test_relative_position_index_range_and_symmetry():
    index = relative_position_index(8)
    assert index.shape == (64, 64)
    assert index.min() == 0 and index.max() == 15 * 15 - 1
    assert torch.equal(index + index.t(), torch.full_like(index, 2 * (7 * 15 + 7)))


def test_shift_labels_and_mask_hand_checked_4x4_window2_shift1():
    labels = window_labels(4, 4, 2, 1)
    # rolled map: rows 0-1 band 0, row 2 band 1, row 3 band 2 (same for columns); label = 3*row_band+col_band
    expected = torch.tensor([
        [0, 0, 0, 0],  # window (0,0): rows 0-1, cols 0-1
        [1, 2, 1, 2],  # window (0,1): cols 2 (band 1) and 3 (band 2)
        [3, 3, 6, 6],  # window (1,0): rows 2 (band 1) and 3 (band 2)
        [4, 5, 7, 8],  # window (1,1): all four tokens in different regions
    ])
    assert torch.equal(labels, expected)
    mask = pair_mask(labels)[:, 0]
    assert (mask[0] == 0).all()
    assert torch.equal(mask[1] == 0, torch.tensor([[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]]).bool())
    assert torch.equal(mask[3] == 0, torch.eye(4, dtype=torch.bool))
    assert mask.max() == 0 and mask.min() == MASKED


def test_padding_is_masked_as_keys():
    labels = window_labels(3, 3, 2, 0)  # padded to 4x4: last row and column are padding
    assert torch.equal(labels[3], torch.tensor([0, -1, -1, -1]))
    mask = pair_mask(labels)[3, 0]
    assert (mask[:, 1:] == MASKED).all(), "no query sees a padded key"
    assert mask[0, 0] == 0, "the real pixel sees itself"


def test_partition_and_reverse_are_inverse():
    x = torch.randn(2, 8, 12, 5)
    windows = window_partition(x, 4)
    assert windows.shape == (2, 6, 16, 5)
    assert torch.equal(windows[0, 1], x[0, 0:4, 4:8].reshape(16, 5))
    assert torch.equal(window_reverse(windows, 4, 8, 12), x)


def test_padded_pixels_do_not_influence_real_ones():
    """A 5x5 map attends exactly like the same map embedded in a larger window grid would if padding were ignored."""
    attention = WindowAttention(8, 2, 4, shift=False).eval()
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        out = attention(x)
        # pixel (0,0) lives in window rows 0-3 / cols 0-3 only; recompute it on that crop directly
        crop = attention(x[:, :, :4, :4])
    torch.testing.assert_close(out[:, :, :4, :4], crop)


def test_shifted_attention_equals_manual_roll_with_region_mask():
    """Shifted windows: tokens from different regions never exchange information."""
    attention = WindowAttention(4, 1, 4, shift=True).eval()
    x = torch.randn(1, 4, 8, 8)
    y = x.clone()
    y[:, :, 0, 0] += 10.0  # (0,0) rolls to (6,6): its window mixes it only with its own region {(6..7,6..7)}
    with torch.no_grad():
        dx = (attention(y) - attention(x)).abs().sum(1)[0]
    changed = dx > 1e-6
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[0:2, 0:2] = True  # the rolled-back image of region {(6..7),(6..7)}
    assert torch.equal(changed, expected)


def test_token_pruning_skips_flat_windows_only():
    attention = WindowAttention(4, 1, 4, shift=False, prune_threshold=1e-4).eval()
    x = torch.zeros(1, 4, 8, 8)
    x[:, :, :4, :4] = torch.randn(1, 4, 4, 4)  # one textured window, three flat ones
    with torch.no_grad():
        out = attention(x)
        full = WindowAttention(4, 1, 4, shift=False).eval()
        full.load_state_dict(attention.state_dict())
        reference = full(x)
    assert attention.pruned_fraction == 0.75
    assert (out[:, :, 4:, :] == 0).all() and (out[:, :, :, 4:] == 0).all()
    torch.testing.assert_close(out[:, :, :4, :4], reference[:, :, :4, :4])


def test_unpruned_forward_finds_masked_windows_once_per_shape(monkeypatch):
    """Without pruning, which windows need a mask is a fact of the shape: after the first forward at a shape no
    `nonzero` runs (on a GPU each would wait for the device), and the batched result equals per-image results."""
    attention = WindowAttention(8, 2, 4, shift=True).eval()
    x = torch.randn(3, 8, 9, 11)  # padded and shifted: border windows need masks
    with torch.no_grad():
        first = attention(x)

        def no_host_sync(*args, **kwargs):
            raise AssertionError("nonzero in a steady-state forward")

        monkeypatch.setattr(torch.Tensor, "nonzero", no_host_sync)
        again = attention(x)
        monkeypatch.undo()
        alone = torch.cat([attention(x[i:i + 1]) for i in range(3)])
    assert torch.equal(first, again)
    torch.testing.assert_close(first, alone)


def test_cpu_chunks_of_windows_give_the_unchunked_result(monkeypatch):
    """On CPU attention runs a chunk of windows at a time (cache-sized logits); the chunks split the sparse
    border masks, the shifted-window masks and pruning's subsets, and must not change a single value."""
    from freqnet.archs import window_attention

    torch.manual_seed(0)
    for prune in (0.0, 0.05):
        attention = WindowAttention(8, 2, 4, shift=True, prune_threshold=prune)
        x = torch.randn(3, 8, 37, 29)  # 3 x 80 windows, the border ones masked
        x[:, :, :12] = 0.1  # flat windows, pruned when pruning is on
        monkeypatch.setattr(window_attention, "CPU_CHUNK", 10**9)
        whole = attention(x)
        (whole * torch.linspace(-1, 1, whole.numel()).view_as(whole)).sum().backward()
        whole_grad = attention.qkv.weight.grad.clone()
        attention.zero_grad()
        monkeypatch.setattr(window_attention, "CPU_CHUNK", 14)  # 7 windows a chunk: chunk edges cut mask runs
        chunked = attention(x)
        (chunked * torch.linspace(-1, 1, chunked.numel()).view_as(chunked)).sum().backward()
        assert torch.equal(whole, chunked)
        torch.testing.assert_close(whole_grad, attention.qkv.weight.grad)
