"""The 6A entity world as CSR arrays for 6B.S1's entity kernel (engine/kernels/attach_entities.py): accounts
per party, instruments per account with their channel weights, linked devices per party, IP links per device,
VPN IPs and terminals per site. 6A numbers every entity sequentially from 1, so arrays are indexed by id."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from engine.core.row_order import in_key_order
from engine.core.state import StateContext
from engine.kernels.attach_entities import Holdings
from engine.segments.l3.s6b.policy import Attachment
from engine.segments.l3.s6b.pools import instrument_weights

HANDHELD = ("MOBILE", "TABLET")  # where a wallet (device) token lives
# the 6A tables and columns S1 reads
COLUMNS = {
    "accounts": ["account_id", "party_id", "is_primary"],
    "instruments": ["instrument_id", "account_id", "instrument_type", "cnp_enabled"],
    "device_links": ["device_id", "party_id"],
    "devices": ["device_id", "device_type"],
    "ip_links": ["ip_id", "device_id", "usage_weight"],
    "ips": ["ip_id", "ip_type"],
    "terminals": ["terminal_id", "site_id"],
}


def csr_first(owner: np.ndarray, n_owners: int) -> np.ndarray:
    """first[k]..first[k+1]-1 are the rows owned by k (owner sorted ascending, ≥ 0), k in 0..n_owners.

    first[k] counts the rows owned below k: one bincount and a running sum, linear in rows and owners (a
    binary search per owner took 3× as long on large's 23 M instruments)."""
    counts = np.bincount(owner, minlength=n_owners + 2)
    first = np.zeros(n_owners + 2, dtype=np.int64)
    np.cumsum(counts[: n_owners + 1], out=first[1:])
    return first


def by_id(ids: np.ndarray, values: np.ndarray, dtype: type) -> np.ndarray:
    """values scattered to their ids (0 where no row has the id)."""
    out = np.zeros(int(ids.max(initial=0)) + 2, dtype=dtype)
    out[ids.astype(np.int64)] = values
    return out


@dataclass(frozen=True)
class World:
    """Holdings plus what S1 validates against and the pools' eligibility needs."""

    holdings: Holdings
    site_ids: np.ndarray  # u64 sorted: site row → site_id
    acc_party: np.ndarray  # u64 by account_id
    inst_account: np.ndarray  # u64 by instrument_id
    party_of_acc_row: np.ndarray  # i64 per account row
    inst_acc_row: np.ndarray  # i64 per instrument row
    inst_w: np.ndarray  # f64 [N_CHANNELS, I]

    def site_rows(self, site_id: np.ndarray, has_site: np.ndarray) -> np.ndarray:
        """Row of each arrival's site in the terminal table, −1 without a site or a terminal there."""
        if self.site_ids.size == 0:
            return np.full(site_id.size, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.site_ids, site_id), self.site_ids.size - 1)
        return np.where(has_site & (self.site_ids[pos] == site_id), pos, -1).astype(np.int64)


def build_world(t: dict[str, pl.DataFrame], pol: Attachment, n_parties: int) -> World:
    """The CSR world from 6A's tables (COLUMNS)."""
    acc = in_key_order(t["accounts"], ("party_id", "account_id"))
    acc_ids = acc["account_id"].to_numpy()
    acc_row = by_id(acc_ids, np.arange(acc.height), np.int64)
    inst = in_key_order(
        t["instruments"].with_columns(
            pl.Series("acc_row", acc_row[t["instruments"]["account_id"].to_numpy().astype(np.int64)])
        ),
        ("acc_row", "instrument_id"),
    )
    inst_acc_row = inst["acc_row"].to_numpy().astype(np.int64)
    inst_w = np.ascontiguousarray(instrument_weights(inst, pol))
    links = in_key_order(t["device_links"], ("party_id", "device_id"))
    link_dev = links["device_id"].to_numpy().astype(np.int64)
    devices = t["devices"]
    handheld = by_id(
        devices["device_id"].to_numpy(),
        devices["device_type"].cast(pl.String).is_in(HANDHELD).to_numpy(),
        bool,
    )
    ip_links = in_key_order(t["ip_links"], ("device_id", "ip_id"))
    ips = t["ips"]
    terms = in_key_order(t["terminals"], ("site_id", "terminal_id"))
    site_ids = terms["site_id"].unique().sort().to_numpy().astype(np.uint64)
    site_row = np.searchsorted(site_ids, terms["site_id"].to_numpy())
    holdings = Holdings(
        acc_first=csr_first(acc["party_id"].to_numpy().astype(np.int64), n_parties),
        acc_id=acc_ids.astype(np.uint64),
        acc_primary=acc["is_primary"].to_numpy(),
        acc_w=np.ascontiguousarray(
            np.stack([np.bincount(inst_acc_row, weights=w, minlength=acc.height) for w in inst_w])
        ),
        inst_first=csr_first(inst_acc_row, acc.height - 1),
        inst_id=inst["instrument_id"].to_numpy().astype(np.uint64),
        inst_w=inst_w,
        inst_token=(inst["instrument_type"].cast(pl.String) == "DEVICE_TOKEN").to_numpy(),
        dev_first=csr_first(links["party_id"].to_numpy().astype(np.int64), n_parties),
        dev_id=link_dev.astype(np.uint64),
        dev_handheld=handheld[link_dev],
        ip_first=csr_first(ip_links["device_id"].to_numpy().astype(np.int64), handheld.size),
        ip_id=ip_links["ip_id"].to_numpy().astype(np.uint64),
        ip_cum=np.cumsum(ip_links["usage_weight"].to_numpy().astype(np.float64)),
        vpn_ip=np.sort(
            ips.filter(pl.col("ip_type").cast(pl.String) == "VPN_PROXY")["ip_id"].to_numpy()
        ).astype(np.uint64),
        term_first=csr_first(site_row, site_ids.size - 1),
        term_id=terms["terminal_id"].to_numpy().astype(np.uint64),
    )
    return World(
        holdings=holdings,
        site_ids=site_ids,
        acc_party=by_id(acc_ids, acc["party_id"].to_numpy(), np.uint64),
        inst_account=by_id(inst["instrument_id"].to_numpy(), inst["account_id"].to_numpy(), np.uint64),
        party_of_acc_row=acc["party_id"].to_numpy().astype(np.int64),
        inst_acc_row=inst_acc_row,
        inst_w=inst_w,
    )


def load_world(ctx: StateContext, pol: Attachment, n_parties: int) -> World:
    return build_world({name: ctx.sealed_table(name, cols) for name, cols in COLUMNS.items()}, pol, n_parties)
