"""DP-SGD with Opacus on the tiny Llama: per-example gradients vs our vmap ones, clipping,
noise scale, empty Poisson batches, the accountant, cleanup."""

from __future__ import annotations

import math

import pytest
import torch
from opacus import GradSampleModule

from lib.algorithms.dp_sgd import (
    DPSGD,
    dp_finetune,
    epsilon_for,
    noise_multiplier_for_epsilon,
    poisson_batches,
)
from lib.algorithms.per_sample import ParamLayout, per_sample_gradients, select_parameters


def _batch(m: int = 4, length: int = 8, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 2000, (m, length), generator=gen)
    lengths = torch.tensor([length, 5, length, 3, 6, 7][:m])
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    return ids.masked_fill(mask == 0, 0), mask


def test_opacus_per_example_gradients_equal_vmap_on_llama(tiny_model):
    names = select_parameters(tiny_model, "all")  # embeddings (tied head), Linear, RMSNorm
    ids, mask = _batch()
    G, layout = per_sample_gradients(tiny_model, ids, mask, params=names, chunk_size=4)
    tiny_model.train()
    gsm = GradSampleModule(tiny_model, batch_first=True, loss_reduction="sum")
    from lib.algorithms.per_sample import prepare_targets, sequence_losses

    labels = prepare_targets(ids, mask)
    sequence_losses(gsm(input_ids=ids, use_cache=False).logits, labels).sum().backward()
    named = dict(tiny_model.named_parameters())
    opacus_rows = torch.cat([named[n].grad_sample.reshape(4, -1) for n in layout.names], dim=1)
    gsm.to_standard_module()
    rel = (opacus_rows - G).norm(dim=1) / G.norm(dim=1)
    assert rel.max() < 1e-5


def _clipped_mean_step(model, ids, mask, names, clip, expected_batch, lr):
    G, _ = per_sample_gradients(model, ids, mask, params=names, chunk_size=4)
    factor = (clip / (G.norm(dim=1) + 1e-6)).clamp(max=1.0)  # Opacus' clip factor
    return -lr * (factor[:, None] * G).sum(0) / expected_batch, G.norm(dim=1)


def test_noise_free_step_is_the_clipped_sum_over_expected_batch(tiny_model):
    names = select_parameters(tiny_model, "last_k", k=1, include_head=True)
    layout = ParamLayout.from_model(tiny_model, names)
    ids, mask = _batch()
    before = layout.get(tiny_model)
    norms = per_sample_gradients(tiny_model, ids, mask, params=names)[0].norm(dim=1)
    clip = float(norms.median())  # about half the examples are clipped
    expected, _ = _clipped_mean_step(tiny_model, ids, mask, names, clip, 5, 0.5)
    with DPSGD(
        tiny_model,
        names,
        clip_norm=clip,
        noise_multiplier=0.0,
        lr=0.5,
        sample_rate=0.1,
        expected_batch_size=5,
    ) as dp:
        loss = dp.step(ids, mask)
    assert math.isfinite(loss)
    delta = layout.get(tiny_model) - before
    assert (norms > clip).sum() >= 1 and (norms < clip).sum() >= 1
    assert float((delta - expected).norm() / expected.norm()) < 1e-4
    # Frozen parameters outside P did not move; flags and eval mode are restored.
    assert not tiny_model.training
    assert all(p.requires_grad for p in tiny_model.parameters())
    assert not any(hasattr(p, "grad_sample") for p in tiny_model.parameters())


def _step_delta(model, names, ids, mask, sigma, seed, clip=0.1, batch=4, lr=1.0):
    layout = ParamLayout.from_model(model, names)
    before = layout.get(model)
    with DPSGD(
        model,
        names,
        clip_norm=clip,
        noise_multiplier=sigma,
        lr=lr,
        sample_rate=0.5,
        expected_batch_size=batch,
        seed=seed,
    ) as dp:
        dp.step(ids, mask)
    after = layout.get(model)
    layout.set_(model, before)
    return after - before


def test_noise_has_std_sigma_c_over_batch_and_is_seeded(tiny_model):
    names = select_parameters(tiny_model, "last_k", k=2)
    ids, mask = _batch()
    clean = _step_delta(tiny_model, names, ids, mask, 0.0, seed=0)
    noisy = _step_delta(tiny_model, names, ids, mask, 2.0, seed=0)
    again = _step_delta(tiny_model, names, ids, mask, 2.0, seed=0)
    other = _step_delta(tiny_model, names, ids, mask, 2.0, seed=1)
    assert torch.allclose(noisy, again)
    assert not torch.allclose(noisy, other)
    noise = noisy - clean  # lr * N(0, (sigma C)^2) / B per coordinate
    assert noise.numel() > 10_000
    assert float(noise.std()) == pytest.approx(2.0 * 0.1 / 4, rel=0.05)
    assert abs(float(noise.mean())) < 0.05 * 2.0 * 0.1 / 4


def test_empty_poisson_batch_is_a_noise_only_step(tiny_model):
    names = select_parameters(tiny_model, "last_k", k=1)
    layout = ParamLayout.from_model(tiny_model, names)
    before = layout.get(tiny_model)
    empty = torch.zeros(0, 8, dtype=torch.long)
    with DPSGD(
        tiny_model,
        names,
        clip_norm=1.0,
        noise_multiplier=1.0,
        lr=1.0,
        sample_rate=0.01,
        expected_batch_size=2,
    ) as dp:
        assert math.isnan(dp.step(empty))
        assert dp.steps == 1
        assert dp.epsilon(1e-5) == pytest.approx(epsilon_for(1.0, 0.01, 1, 1e-5))
    noise = layout.get(tiny_model) - before
    assert float(noise.std()) == pytest.approx(1.0 * 1.0 / 2, rel=0.05)


def test_accountant_and_two_target_epsilons():
    q, steps, delta = 0.05, 200, 1e-5
    sigmas = [noise_multiplier_for_epsilon(eps, delta, q, steps) for eps in (1.0, 8.0)]
    assert sigmas[0] > sigmas[1] > 0
    for eps, sigma in zip((1.0, 8.0), sigmas, strict=True):
        reached = epsilon_for(sigma, q, steps, delta)
        assert eps - 0.05 <= reached <= eps
    assert epsilon_for(0.0, q, steps, delta) == math.inf
    prv = epsilon_for(sigmas[0], q, steps, delta, accountant="prv")
    assert 0.5 < prv < 1.5  # PRV is a tighter numerical account of the same mechanism


def test_dp_finetune_with_poisson_batches(tiny_model):
    ids, mask = _batch(m=6, seed=2)
    batches = (
        {"input_ids": ids[idx], "attention_mask": mask[idx]}
        for idx in poisson_batches(6, 0.5, steps=3, seed=0)
    )
    names = select_parameters(tiny_model, "last_k", k=1)
    result = dp_finetune(
        tiny_model,
        batches,
        names,
        clip_norm=1.0,
        noise_multiplier=1.0,
        lr=1e-2,
        steps=3,
        sample_rate=0.5,
        delta=1e-3,
        expected_batch_size=3,
    )
    assert result.steps == 3 and len(result.losses) == 3
    assert result.epsilon == pytest.approx(epsilon_for(1.0, 0.5, 3, 1e-3))
    assert result.sampling == "poisson"
    with pytest.raises(ValueError, match="ran out"):
        dp_finetune(
            tiny_model,
            iter([{"input_ids": ids, "attention_mask": mask}]),
            names,
            clip_norm=1.0,
            noise_multiplier=1.0,
            lr=1e-2,
            steps=2,
            sample_rate=0.5,
            delta=1e-3,
            expected_batch_size=3,
        )
    # Poisson sampling: each example in each batch with probability q.
    sizes = [len(b) for b in poisson_batches(1000, 0.1, steps=20, seed=1)]
    assert 80 < sum(sizes) / 20 < 120


def test_bad_arguments_are_refused(tiny_model):
    names = select_parameters(tiny_model, "last_k", k=1)
    common = dict(clip_norm=1.0, noise_multiplier=1.0, lr=0.1, expected_batch_size=2)
    with pytest.raises(ValueError, match="sample_rate"):
        DPSGD(tiny_model, names, sample_rate=0.0, **common)
    with pytest.raises(ValueError, match="optimizer"):
        DPSGD(tiny_model, names, sample_rate=0.1, optimizer="lion", **common)
    with pytest.raises(KeyError, match="unknown"):
        DPSGD(tiny_model, ["nope"], sample_rate=0.1, **common)
    with pytest.raises(ValueError, match="accountant"):
        epsilon_for(1.0, 0.1, 10, 1e-5, accountant="gdp_x")
