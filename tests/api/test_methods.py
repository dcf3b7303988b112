"""GET /methods and /methods/columns (the registry), and job metrics typed by kind."""

from __future__ import annotations

from tests.factories import hh_records, jsonl_bytes
from worker.influence.methods import METHODS, SCORE_COLUMNS

API = "/api/v1"


def test_methods_list_the_registry(client, auth) -> None:
    response = client.get(f"{API}/methods", headers=auth)
    assert response.status_code == 200, response.text
    methods = response.json()
    assert [m["name"] for m in methods] == list(METHODS)
    influence = next(m for m in methods if m["name"] == "influence")
    assert influence["harm_column"] == "harm_influence"
    assert influence["columns"] == ["harm_influence", "removal_effect_influence"]
    assert influence["needs_curvature"] and influence["needs_gradients"]
    assert influence["label"] == METHODS["influence"].label and influence["orientation"]


def test_score_columns_list_the_registry(client, auth) -> None:
    response = client.get(f"{API}/methods/columns", headers=auth)
    assert response.status_code == 200, response.text
    columns = response.json()
    assert [c["name"] for c in columns] == list(SCORE_COLUMNS)
    loss = next(c for c in columns if c["name"] == "loss")
    assert loss == {
        "name": "loss",
        "label": "BT loss",
        "unit": "nats",
        "orientation": "higher_harmful",
        "higher": "the model disagrees with the label",
        "ranked": True,
        "shown": True,
    }


def test_methods_need_a_token(client) -> None:
    assert client.get(f"{API}/methods").status_code == 401
    assert client.get(f"{API}/methods/columns").status_code == 401


def test_job_metrics_carry_their_kind_and_every_declared_stored_key(client, auth) -> None:
    from backend.db import session_scope
    from backend.models import Job

    dataset = client.post(
        f"{API}/datasets",
        headers=auth,
        files={"file": ("d.jsonl", jsonl_bytes(hh_records(12)))},
        data={"name": "d"},
    ).json()
    job = client.post(f"{API}/datasets/{dataset['id']}/jobs", headers=auth, json={}).json()
    assert job["metrics"] is None
    stored = {
        "val_accuracy": 0.75,
        "default_method": "length",
        "trust": {"val_accuracy": 0.75, "val_accuracy_ci95": [0.5, 0.9], "is_evidence": True},
        "history": [{"epoch": 1, "train_loss": 0.6, "seconds": 2.5}],
    }
    # A key an older version wrote and no model declares any more is dropped when read.
    old = {**stored, "an_old_key": {"anything": [1, "two"]}}
    with session_scope() as session:
        row = session.get(Job, job["id"])
        assert row is not None
        row.status, row.metrics = "succeeded", old
        session.commit()
    read = client.get(f"{API}/jobs/{job['id']}", headers=auth).json()
    assert read["metrics"] == {**stored, "kind": "audit"}
    listed = client.get(f"{API}/datasets/{dataset['id']}/jobs", headers=auth).json()
    assert listed["items"][0]["metrics"] == {**stored, "kind": "audit"}
