"""Audits through the API that run to success, and the two `tiny` LoRA audits that save their
reward models (save_model) for the tests that name them as outside reward models (`job:<id>`)."""

from __future__ import annotations

from tests.factories import API, wait_for_job

MAX_LENGTH = 64
TINY = {"model": "tiny", "epochs": 1, "batch_size": 8, "max_length": MAX_LENGTH, "device": "cpu"}


def launch_audit(client, headers: dict, dataset_id: int, **options: object) -> dict:
    """A `tiny` audit of the dataset with `options`, run to success; the finished job."""
    created = client.post(
        f"{API}/datasets/{dataset_id}/jobs", headers=headers, json={**TINY, **options}
    )
    assert created.status_code == 202, created.text
    job = wait_for_job(client, headers, created.json()["id"], timeout=600)
    assert job["status"] == "succeeded", job["error"]
    return job


def save_two_models(client, headers: dict, dataset_id: int) -> list[dict]:
    """Two tiny LoRA audits of the dataset that save their models (seeds 0 and 1)."""
    return [
        # One task each (hessian="exact" runs unsharded): both save their model.
        launch_audit(
            client,
            headers,
            dataset_id,
            save_model=True,
            seed=seed,
            hessian="exact",
            methods=["loss"],
        )
        for seed in (0, 1)
    ]
