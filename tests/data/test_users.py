"""User attributes (who users are) and the cold-user holdout (whole users held out)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from crossrec.config import ConfigError, parse_params
from crossrec.data.errors import DataValidationError
from crossrec.data.splits import assign_splits
from crossrec.data.users import UsersConfig, attach_user_attributes, attribute_words

CONF = Path(__file__).resolve().parents[2] / "conf" / "base"


def _users() -> pd.DataFrame:
    return pd.DataFrame({"user_idx": [0, 1, 2], "user_id": ["1", "2", "3"]})


def test_attributes_join_the_users_table(tmp_path):
    pd.DataFrame(
        {"uid": ["1", "2", "9"], "age": ["24", "", "40"], "sex": ["M", "F", "F"],
         "job": ["technician", "writer", "other"]}
    ).to_csv(tmp_path / "users.csv", index=False)
    config = UsersConfig(file="users.csv", id_column="uid", categorical_columns=["sex", "job"],
                         numeric_columns=["age"])
    out = attach_user_attributes(_users(), tmp_path, config, "toy")
    assert out["sex"].tolist() == ["M", "F", ""]  # user 3 has no row: empty, logged
    assert out["age"].iloc[0] == 24 and np.isnan(out["age"].iloc[1])
    assert attribute_words(out, ["sex", "job"], ["age"]) == [
        "age 20s, sex m, job technician",
        "sex f, job writer",
        "",
    ]


def test_bad_user_files_name_the_row_and_column(tmp_path):
    config = UsersConfig(file="users.csv", id_column="uid", numeric_columns=["age"])
    pd.DataFrame({"uid": ["1", "2"], "age": ["24", "old"]}).to_csv(tmp_path / "users.csv",
                                                                    index=False)
    with pytest.raises(DataValidationError, match=r"users.csv, row 2, column 'age'.*'old'"):
        attach_user_attributes(_users(), tmp_path, config, "toy")
    pd.DataFrame({"uid": ["1", "1"], "age": ["24", "3"]}).to_csv(tmp_path / "users.csv",
                                                                  index=False)
    with pytest.raises(DataValidationError, match="duplicate user id '1'"):
        attach_user_attributes(_users(), tmp_path, config, "toy")
    with pytest.raises(ConfigError, match="at least one"):
        parse_params(UsersConfig, {"file": "users.csv"}, "x.users")
    with pytest.raises(ConfigError, match="clash"):
        parse_params(UsersConfig, {"file": "u.csv", "categorical_columns": ["user_id"]}, "x")


def test_cold_users_are_held_out_whole_and_seeded():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"user_idx": np.repeat(np.arange(40), 10), "item_idx": rng.integers(0, 100, 400),
         "timestamp": np.arange(400)}
    ).drop_duplicates(["user_idx", "item_idx"])
    kwargs = dict(ratios=(0.8, 0.1, 0.1), min_user_interactions=3, cold_share=0.0,
                  cold_valid_fraction=0.5, seed=7, cold_user_share=0.25,
                  cold_user_valid_fraction=0.5)
    labels, _ = assign_splits(frame, "random", **kwargs)
    per_user = pd.DataFrame({"u": frame["user_idx"].to_numpy(), "s": labels}).groupby("u")["s"]
    no_train = [u for u, s in per_user if "train" not in set(s)]
    assert len(no_train) == 10  # 25% of 40 users
    assert all(per_user.get_group(u).nunique() == 1 for u in no_train)  # whole users
    kinds = {per_user.get_group(u).iloc[0] for u in no_train}
    assert kinds == {"valid", "test"}
    again, _ = assign_splits(frame, "random", **kwargs)
    assert (again == labels).all()
    plain, _ = assign_splits(frame, "random", **{**kwargs, "cold_user_share": 0.0})
    warm = ~np.isin(frame["user_idx"].to_numpy(), no_train)
    # the warm users' split does not depend on the holdout's draw
    assert (plain[warm] == labels[warm]).mean() > 0.5


def test_real_movielens_users_are_described(shared_data_dir):
    from crossrec.data.ingest import ingest_in_memory

    params = yaml.safe_load((CONF / "parameters_ingest.yml").read_text())["ingest"]
    params["raw_root"] = str(shared_data_dir)
    params["media"] = {"check": False}
    params["split"]["cold_users"]["share"] = 0.05
    out = ingest_in_memory(params, "movielens100k_multimodal", seed=0)
    users = out["users"]
    assert {"age", "sex", "occupation"} <= set(users.columns) and len(users) == 943
    assert users["sex"].isin(["M", "F"]).all() and users["age"].between(7, 73).all()
    info = out["dataset_info"]
    assert info["n_cold_users"] == 47 and info["split_strategy"].endswith("+cold_users")
