import math

import pytest
import torch

from freqnet.archs.moe import SelectiveMoEFFN


def make_moe(top_k=1, experts=4, capacity=1.25, noise=0.0, balance=0.01, zloss=0.0):
    return SelectiveMoEFFN(16, 2.0, experts, top_k, capacity, balance, zloss, noise)


def dense_reference(moe: SelectiveMoEFFN, x: torch.Tensor) -> torch.Tensor:
    """Every expert on every token, weighted by the routing's kept gates: what sparse dispatch must equal."""
    b, c, h, w = x.shape
    tokens = moe.context(x).permute(0, 2, 3, 1).reshape(-1, c)
    routing = moe.route(tokens)
    weights = torch.zeros(tokens.shape[0], moe.num_experts)
    weights.scatter_add_(1, routing.expert, routing.gate * routing.kept)
    out = sum(weights[:, e:e + 1] * expert(tokens) for e, expert in enumerate(moe.experts))
    return out.view(b, h, w, c).permute(0, 3, 1, 2)


@pytest.mark.parametrize("top_k", [1, 2])
@pytest.mark.parametrize("training", [False, True])
def test_sparse_dispatch_equals_dense_reference(top_k, training):
    moe = make_moe(top_k=top_k, capacity=0.6).train(training)
    x = torch.randn(2, 16, 6, 7)
    with torch.no_grad():
        torch.manual_seed(1)
        sparse = moe(x)
        torch.manual_seed(1)
        dense = dense_reference(moe, x)
    torch.testing.assert_close(sparse, dense, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("top_k", [1, 2])
def test_routing_respects_top_k_and_capacity(top_k):
    moe = make_moe(top_k=top_k, capacity=0.5).train()
    tokens = torch.randn(200, 16)
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0, 0] = 5.0  # most tokens prefer expert 0 -> overflow
        routing = moe.route(tokens)
    assert routing.expert.shape == (200, top_k)
    if top_k == 2:
        assert (routing.expert[:, 0] != routing.expert[:, 1]).all()
        torch.testing.assert_close(routing.gate.sum(-1), torch.ones(200))
    capacity = math.ceil(0.5 * top_k * 200 / 4)
    for e in range(4):
        assert ((routing.expert == e) & routing.kept).sum() <= capacity
    assert (~routing.kept).any(), "the skewed router must overflow at capacity factor 0.5"
    # first choices are served before second choices
    dropped_first = (~routing.kept[:, 0]).sum()
    assert dropped_first <= (~routing.kept).sum()


def test_no_capacity_limit_at_inference():
    moe = make_moe(capacity=0.1).eval()
    with torch.no_grad():
        moe.router.weight.zero_()
        routing = moe.route(torch.randn(100, 16))
    assert routing.kept.all()


def test_balance_loss_equals_weight_when_uniform_and_grows_under_collapse():
    moe = make_moe(balance=0.01, zloss=0.0).eval()
    tokens = torch.randn(64, 16)
    with torch.no_grad():
        moe.router.weight.zero_()  # uniform probabilities
        uniform = moe.losses(moe.route(tokens))
        moe.router.weight.zero_()
        moe.router.weight[0] = 0.0
        tokens_collapsed = tokens.abs() + 1.0
        moe.router.weight[0, :] = 10.0  # every token strongly prefers expert 0
        collapsed = moe.losses(moe.route(tokens_collapsed))
    assert uniform.item() == pytest.approx(0.01, rel=1e-6)
    assert collapsed.item() == pytest.approx(0.01 * 4, rel=1e-3)


def test_zloss_is_mean_squared_logsumexp():
    moe = make_moe(balance=0.0, zloss=1e-3).eval()
    tokens = torch.randn(32, 16)
    with torch.no_grad():
        routing = moe.route(tokens)
        expected = 1e-3 * torch.logsumexp(tokens @ moe.router.weight.t(), -1).square().mean()
    torch.testing.assert_close(moe.losses(routing), expected)


def test_every_expert_with_tokens_gets_gradient_and_idle_ones_get_zero():
    moe = make_moe(top_k=1, capacity=2.0).train()
    with torch.no_grad():
        direction = torch.randn(16)
        moe.router.weight.zero_()
        moe.router.weight[0], moe.router.weight[2] = direction, -direction  # 1 and 3 never win
    x = torch.randn(1, 16, 8, 8)
    (moe(x).square().mean() + moe.aux).backward()
    load = moe.load
    for e, expert in enumerate(moe.experts):
        grad = expert.expand.weight.grad
        assert grad is not None, "every expert must be in the graph (DDP needs all gradients)"
        if load[e] > 0:
            assert grad.abs().sum() > 0
        else:
            assert grad.abs().sum() == 0
    assert load[1] == 0 and load[3] == 0 and load[0] > 0 and load[2] > 0
    assert load.sum().item() == pytest.approx(1.0)
    assert moe.router.weight.grad.abs().sum() > 0, "the router learns through the gates and aux loss"


def test_router_noise_only_in_training():
    moe = make_moe(noise=1.0)
    tokens = torch.randn(50, 16)
    moe.eval()
    with torch.no_grad():
        assert torch.equal(moe.route(tokens).logits, moe.route(tokens).logits)
        moe.train()
        assert not torch.equal(moe.route(tokens).logits, moe.route(tokens).logits)


@pytest.mark.parametrize("top_k", [1, 2])
def test_inference_paths_agree_dense_routed_and_exported(top_k):
    """Dense (GPU, compile, export) and routed (eager CPU) inference are the same function; so is the buffered
    training path when the capacity holds every token."""
    moe = make_moe(top_k=top_k, capacity=4.0).eval()
    tokens = torch.randn(300, 16)
    with torch.no_grad():
        routing = moe.route(tokens)
        routed = moe.dispatch_routed(tokens, routing)
        dense = moe.dispatch_dense(tokens, moe.combine_weights(routing))
        buffered = moe.dispatch_buffered(tokens, routing, capacity=300)
    torch.testing.assert_close(dense, routed, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(buffered, routed, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("top_k", [1, 2])
def test_routed_inference_with_an_idle_expert(top_k):
    """An expert no token chose gets an empty batch; the gather back to token order still equals dense."""
    moe = make_moe(top_k=top_k).eval()
    with torch.no_grad():
        moe.router.weight[3] = -100.0  # expert 3 loses every token's vote
        tokens = torch.rand(64, 16)  # positive: expert 3's logit is -100 x a positive sum
        routing = moe.route(tokens)
        assert not (routing.expert == 3).any()
        routed = moe.dispatch_routed(tokens, routing)
        dense = moe.dispatch_dense(tokens, moe.combine_weights(routing))
    torch.testing.assert_close(routed, dense, rtol=1e-5, atol=1e-6)
