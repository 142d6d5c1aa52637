"""``generate``: persons, their events and consent records, and the ground truth that produced them."""

from __future__ import annotations

import numpy as np

from adtarget.exceptions import ParameterError
from adtarget.synth._events import draw_events, draw_interests, draw_sensitive, joint_tables
from adtarget.synth._model import GroundTruth, SyntheticConfig, SyntheticData
from adtarget.synth._persons import draw_consent, draw_people
from adtarget.synth._world import freeze_columns, world

__all__ = ["generate"]


def generate(config: SyntheticConfig | None = None) -> SyntheticData:
    """Generate synthetic events, consent records and their ground truth.

    Parameters
    ----------
    config : SyntheticConfig, optional
        What to generate; ``SyntheticConfig()`` (100,000 events) when omitted.

    Returns
    -------
    SyntheticData
        Deterministic in ``config``: the same config gives byte-identical arrays.

    Examples
    --------
    >>> data = generate(SyntheticConfig(n_events=10_000, seed=7))
    >>> data.n_events, sorted(data.events)[:3]
    (10000, ['category', 'kind', 'person_id'])
    """
    config = SyntheticConfig() if config is None else config
    if not isinstance(config, SyntheticConfig):
        raise ParameterError(f"config must be a SyntheticConfig, got {type(config).__name__}")
    model = world()
    streams = [np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(config.seed).spawn(4)]
    people = draw_people(config, streams[0])
    interest, roots = draw_interests(config, model, streams[1])
    sensitive, rate = draw_sensitive(config, model, people, streams[1])
    events, codes = draw_events(config, model, people, joint_tables(config, model, interest, sensitive, rate),
                                streams[2])
    consent, has_consent = draw_consent(config, people, streams[3])
    truth = GroundTruth(people.account, people.group, people.second_group, people.counts, has_consent,
                        people.group_weights, roots, interest, rate, model.taxonomy)
    freeze_columns({k: v for k, v in vars(truth).items() if isinstance(v, np.ndarray)})
    return SyntheticData(config, events, consent, truth, codes)
