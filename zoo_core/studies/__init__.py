"""Built-in studies (``zoo study NAME``), registered through the same hook as any plugin's.

This module only names them: it imports no torch, so ``zoo study --list`` stays light. The
machinery is in :mod:`zoo_core.studies.base`, the studies themselves in
:mod:`zoo_core.studies.builtin`.
"""

from zoo_core.plugins import hookimpl
from zoo_core.registry import StudySpec

_CODE = "zoo_core.studies.builtin"

# name, function, summary, expected minutes on a 2-core CPU (--jobs auto), what --device cuda runs,
# paper
_STUDIES = (
    (
        "long-range",
        "long_range",
        "copy across a growing gap (delay 0, 16, 64): lstm against transformer",
        9,
        "delay up to 256, 4000 steps, width 128",
        "Dai et al. 2019 (Transformer-XL), RECL",
    ),
    (
        "positions",
        "positions",
        "length extrapolation of copy for five positional encodings and the lstm",
        5,
        "train to length 16, evaluate to 64, 4000 steps",
        "Press et al. 2022 (ALiBi); Kazemnejad et al. 2023",
    ),
    (
        "mixer-lm",
        "mixer_lm",
        "language modelling: the transformer block with attention or an lstm as its mixer",
        3,
        "seq_len 256, 3000 steps, width 256",
        "Domhan 2018",
    ),
    (
        "mixer-parity",
        "mixer_parity",
        "parity of 2 to 16 bits, evaluated to 64: attention or lstm mixer, and the lstm",
        2,
        "4000 steps",
        "Delétang et al. 2023",
    ),
    (
        "data-size",
        "data_size",
        "lm on 1%, 10% and 100% of the text, each trained to its best validation loss",
        8,  # measured: 453 s, two runs at a time
        "width 256, up to 10000 steps",
        "",
    ),
    (
        "mqar",
        "mqar",
        "multi-query associative recall, 4 to 16 pairs: transformer and lstm at two widths",
        9,  # measured: 490 s, two runs at a time
        "4 to 64 pairs, widths 64 to 512, 4000 steps",
        "Arora et al. 2023 (Zoology), Figure 2",
    ),
    (
        "induction",
        "induction",
        "repeated random tokens: the phase change, and length generalisation to 8x per encoding",
        5,  # measured: 250 s, two runs at a time
        "train at 64, evaluate to 512, 3000 steps",
        "Olsson et al. 2022; Gu & Dao 2023 (Mamba), Table 11",
    ),
    (
        "context-usage",
        "context_usage",
        "lm loss at each window position and effective context: lstm against transformer",
        4,  # measured: 223 s, two runs at a time
        "seq_len 512, 2000 and 8000 steps",
        "Dai et al. 2019 (Transformer-XL), section 4.3",
    ),
    (
        "domhan-scan",
        "domhan_scan",
        "SCAN simple: attention or lstm in the encoder x in the decoder of a Transformer",
        8,
        "width 256, 4000 steps, every test command",
        "Domhan 2018",
    ),
    (
        "domhan-svo-sov",
        "domhan_svo_sov",
        "svo-sov translation (long-range reordering): attention or lstm, encoder x decoder",
        8,
        "width 256, 4000 steps, every test sentence",
        "Domhan 2018",
    ),
    (
        "scan-length",
        "scan_length",
        "SCAN length split: each positional encoding of the Transformer, and the lstm",
        10,
        "width 256, 4000 steps",
        "Lake & Baroni 2018; Csordás et al. 2021",
    ),
    (
        "scan-addprim",
        "scan_addprim",
        "SCAN addprim-jump split: each positional encoding of the Transformer, and the lstm",
        10,
        "width 256, 4000 steps",
        "Lake & Baroni 2018",
    ),
)


@hookimpl
def register_studies(register):
    for name, function, summary, minutes, cuda, paper in _STUDIES:
        register(
            StudySpec(
                name,
                f"{_CODE}:{function}",
                summary,
                cpu_minutes=minutes,
                cuda=cuda,
                paper=paper,
            )
        )
