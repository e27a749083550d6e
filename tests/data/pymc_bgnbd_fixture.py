"""Make tests/data/bgnbd_pymc_marketing.json: pymc-marketing's BetaGeoModel fitted to the shipped example.

pymc-marketing is not a dependency of stickyrec; it lives in a throw-away venv. Two steps, two interpreters:

    export PYTHONPATH=$PWD
    /work/main/.venv/bin/python tests/data/pymc_bgnbd_fixture.py summary /tmp/or_summary.csv
    python3 -m venv /tmp/pymc-venv && /tmp/pymc-venv/bin/pip install pymc-marketing
    /tmp/pymc-venv/bin/python tests/data/pymc_bgnbd_fixture.py fit /tmp/or_summary.csv \\
        tests/data/bgnbd_pymc_marketing.json

``summary`` writes the calibration summary of the shipped Online Retail II example cut at 2011-06-30 (x, t_x, T
in weeks) in pymc-marketing's column names. ``fit`` runs BetaGeoModel's MAP fit twice: with HalfFlat priors on
r, alpha, a and b (PyMC's find_MAP maximises the log-density without the log-transform's Jacobian, so flat
priors make MAP the maximum-likelihood estimate, which tests/test_bgnbd.py compares with ours), and with
pymc-marketing's default priors (Weibull on r and alpha, a hierarchical Beta on the dropout), for the record.
"""

from __future__ import annotations

import json
import sys
import time

CALIBRATION_END = "2011-06-30"


def write_summary(out: str) -> None:
    from stickyrec.experiments.calibration.examples import load_example
    from stickyrec.experiments.calibration.transactions import read_transactions, split

    summary = split(read_transactions(load_example("online_retail_ii")), CALIBRATION_END).summary
    table = summary[["x", "t_x", "T"]].rename(columns={"x": "frequency", "t_x": "recency"})
    table.index.name = "customer_id"
    table.reset_index().to_csv(out, index=False, float_format="%.17g")


def map_fit(data, model_config) -> dict:
    from pymc_marketing.clv import BetaGeoModel

    started = time.perf_counter()
    model = BetaGeoModel(data=data, model_config=model_config)
    model.fit(method="map", progressbar=False)
    posterior = model.idata.posterior
    names = ("r", "alpha", "a", "b")
    values = {name: float(posterior[name].values.ravel()[0]) for name in names}
    return {"params": values, "seconds": round(time.perf_counter() - started, 1)}


def fit(summary: str, out: str) -> None:
    import pandas as pd
    import pymc
    import pymc_marketing
    from pymc_extras.prior import Prior

    data = pd.read_csv(summary, dtype={"customer_id": str})
    flat = {name: Prior("HalfFlat") for name in ("r", "alpha", "a", "b")}
    record = {
        "what": "pymc-marketing BetaGeoModel MAP fits to the shipped Online Retail II example's calibration summary",
        "data": f"experiments/datasets/online_retail_ii.csv.gz cut at {CALIBRATION_END}; x, t_x, T in weeks",
        "customers": int(len(data)),
        "versions": {"pymc-marketing": pymc_marketing.__version__, "pymc": pymc.__version__},
        "commands": [
            "/work/main/.venv/bin/python tests/data/pymc_bgnbd_fixture.py summary /tmp/or_summary.csv",
            "/tmp/pymc-venv/bin/python tests/data/pymc_bgnbd_fixture.py fit /tmp/or_summary.csv"
            " tests/data/bgnbd_pymc_marketing.json",
        ],
        "flat_priors_map": map_fit(data, flat),
        "default_priors_map": map_fit(data, None),
        "note": "flat_priors_map is the MLE (HalfFlat priors; find_MAP drops the Jacobian); default_priors_map uses"
        " pymc-marketing's default priors and differs from the MLE by their pull",
    }
    with open(out, "w") as handle:
        json.dump(record, handle, indent=2)
        handle.write("\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "summary":
        write_summary(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "fit":
        fit(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
