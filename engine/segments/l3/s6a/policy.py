"""Pydantic models of 6A's policy packs; their JSON Schemas under contracts/ are generated from these.

One section per pack (world, population, accounts, instruments, terminals, devices, ips, roles, validation);
POLICIES at the bottom maps each shipped file config/policies/6A/<name>.yaml to its model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from engine.core.policy_model import (
    Coef,
    Currency,
    Exponent,
    FieldError,
    Iso2,
    Mcc,
    Positive,
    Prob,
    Strict,
    ordered,
    pair,
    validation_model,
)
from engine.segments.l2.s5a.policy import DemandClass

# --- world, population, accounts, instruments (6A.S1–S3, design §3.1 and amendment 11) --------------------
REGIONS = ("EUROPE", "NORTH_AMERICA", "LATAM", "MIDDLE_EAST", "AFRICA", "ASIA_PACIFIC")
PARTY_TYPES = ("RETAIL", "BUSINESS")
DAYS_PER_MONTH = 365.2425 / 12.0  # the Gregorian mean month: S1 draws tenure in months, S6 reads it back
SEGMENTS = (
    "RETAIL_STUDENT",
    "RETAIL_EARLY_CAREER",
    "RETAIL_FAMILY",
    "RETAIL_MASS_MARKET",
    "RETAIL_AFFLUENT",
    "RETAIL_MATURE",
    "RETAIL_RETIRED",
    "RETAIL_VALUE",
    "BUSINESS_SOLE_TRADER",
    "BUSINESS_MICRO",
    "BUSINESS_SME",
    "BUSINESS_CORPORATE",
)
SCORES = ("income", "digital", "cash", "cross_border")
ACCOUNT_TYPES = ("CURRENT", "SAVINGS", "CREDIT_CARD", "LOAN")
INSTRUMENT_TYPES = (
    "DEBIT_PHYSICAL",
    "DEBIT_VIRTUAL",
    "CREDIT_PHYSICAL",
    "CREDIT_VIRTUAL",
    "DEVICE_TOKEN",
    "NETWORK_TOKEN",
    "BANK_ACCOUNT",
)
SCHEMES = ("VISA", "MASTERCARD", "AMEX", "DISCOVER", "UNIONPAY", "JCB", "OTHER")
RAILS = ("SEPA", "SEPA_INST", "FPS", "ACH", "FEDNOW", "UPI", "PIX", "GENERIC")
MIX_TOL = 1e-9
Region = Literal[REGIONS]  # type: ignore[valid-type]
PartyTypeName = Literal[PARTY_TYPES]  # type: ignore[valid-type]
SegmentName = Literal[SEGMENTS]  # type: ignore[valid-type]
ScoreName = Literal[SCORES]  # type: ignore[valid-type]
AccountType = Literal[ACCOUNT_TYPES]  # type: ignore[valid-type]
InstrumentType = Literal[INSTRUMENT_TYPES]  # type: ignore[valid-type]
Scheme = Literal[SCHEMES]  # type: ignore[valid-type]
Rail = Literal[RAILS]  # type: ignore[valid-type]
Count = Annotated[int, Field(ge=1, le=1_000_000)]


def check_mix(mix: dict[str, float], *path: str | int) -> None:
    """A categorical mix sums to 1 within MIX_TOL (design §3.2)."""
    total = sum(mix.values())
    if abs(total - 1.0) > MIX_TOL:
        raise FieldError(f"the mix sums to {total!r}, not 1", *path)


class World(Strict):
    """N = round(W/(f·a)·m), m a mean-one lognormal(σ) clipped to size_clip; each demand country gets at
    least max(min_parties_per_country, ⌈min_country_share·N⌉), the rest ∝ W_c^country_exponent."""

    flows_per_active_party_week: Positive
    active_fraction: Annotated[float, Field(gt=0.0, le=1.0)]
    size_noise_sigma: Annotated[float, Field(ge=0.0, le=1.0)]
    size_clip: pair(Positive)  # type: ignore[valid-type]
    country_exponent: Exponent
    min_parties_per_country: Count
    min_country_share: Annotated[float, Field(ge=0.0, le=0.05)]

    @model_validator(mode="after")
    def _clip(self) -> World:
        ordered(self.size_clip, "size_clip")
        if not self.size_clip[0] <= 1.0 <= self.size_clip[1]:
            raise FieldError("the clip must hold 1 (m is mean-one)", "size_clip")
        return self


class Profile(Strict):
    """A segment's mean scores (a party draws each as mean + N(0, score_noise_sigma), clipped to [0, 1]),
    its activity factor and its tenure median."""

    income: Prob
    digital: Prob
    cash: Prob
    cross_border: Prob
    activity_factor: Annotated[float, Field(gt=0.0, le=100.0)]
    tenure_median_months: Annotated[float, Field(gt=0.0, le=600.0)]


class Households(Strict):
    """RETAIL household size = 1 + geometric truncated to [0, max_size − 1], by the head's segment; the
    geometric's ratio is solved so that the truncated mean is `mean_size`."""

    max_size: Annotated[int, Field(ge=1, le=10)]
    mean_size: dict[SegmentName, Annotated[float, Field(ge=1.0, le=10.0)]]


class Activity(Strict):
    """weight = min(Pareto(α, x_m = 1), cap_to_median · median) × the segment's activity factor."""

    pareto_alpha: Annotated[float, Field(gt=1.0, le=10.0)]
    cap_to_median: Annotated[float, Field(ge=1.0, le=1e6)]


class Tenure(Strict):
    """months = median · exp(σZ), clipped to [1, max_months]; onboarding = horizon start − months."""

    sigma: Annotated[float, Field(ge=0.0, le=3.0)]
    max_months: Annotated[int, Field(ge=1, le=1200)]


class Population(Strict):
    region_map: dict[Annotated[str, Field(min_length=1)], Region] = Field(min_length=1)
    type_mix: dict[Region, dict[PartyTypeName, Prob]]
    segment_mix: dict[Region, dict[PartyTypeName, dict[SegmentName, Prob]]]
    profiles: dict[SegmentName, Profile]
    score_noise_sigma: Annotated[float, Field(ge=0.0, le=1.0)]
    households: Households
    activity: Activity
    tenure: Tenure

    @model_validator(mode="after")
    def _mixes(self) -> Population:
        for region in sorted(set(self.region_map.values())):
            if region not in self.type_mix or region not in self.segment_mix:
                raise FieldError(f"region {region} has no type or segment mix", "type_mix")
        for region, mix in self.type_mix.items():
            check_mix(mix, "type_mix", region)
            for ptype, share in mix.items():
                if share > 0 and ptype not in self.segment_mix.get(region, {}):
                    raise FieldError(f"no segment mix for {ptype}", "segment_mix", region)
        for region, by_type in self.segment_mix.items():
            for ptype, mix in by_type.items():
                check_mix(mix, "segment_mix", region, ptype)
                for seg in mix:
                    if not seg.startswith(ptype + "_"):
                        raise FieldError(f"{seg} is not a {ptype} segment", "segment_mix", region, ptype)
        if set(self.profiles) != set(SEGMENTS):
            raise FieldError(f"give a profile for every segment {', '.join(SEGMENTS)}", "profiles")
        retail = {s for s in SEGMENTS if s.startswith("RETAIL_")}
        if set(self.households.mean_size) != retail:
            raise FieldError("give a mean household size for every RETAIL segment", "households")
        for seg, mean in self.households.mean_size.items():
            if mean > (1 + self.households.max_size) / 2:
                raise FieldError(
                    f"mean {mean} needs a ratio ≥ 1 at max_size {self.households.max_size}",
                    "households",
                    "mean_size",
                    seg,
                )
        return self


class Product(Strict):
    """Count on [0, k_max] (on [1, k_max] if zero_truncated) from a Poisson(λ·exp(clip(Σ w_f(score_f − 0.5),
    ±tilt_clip))) by inverse CDF."""

    lam: Annotated[float, Field(gt=0.0, le=20.0)]
    k_max: Annotated[int, Field(ge=1, le=16)]
    zero_truncated: bool = False
    tilt: dict[ScoreName, Coef] = Field(default_factory=dict)


class CreditLimit(Strict):
    """limit (USD-equivalent major units) = median · exp(income_slope·(income − 0.5)) · exp(σZ) × the
    party type's factor × (country GDP per head / gdp_reference_usd)^gdp_exponent, in local money at the
    currency's units per USD, rounded to a step of about round_to_usd."""

    median_usd: Positive
    sigma: Annotated[float, Field(ge=0.0, le=3.0)]
    income_slope: Coef
    type_factor: dict[PartyTypeName, Positive]
    round_to_usd: Positive
    gdp_reference_usd: Positive
    gdp_exponent: Annotated[float, Field(ge=0.0, le=2.0)]


class IssuerTier(Strict):
    min_parties: Annotated[int, Field(ge=0)]
    issuers: Annotated[int, Field(ge=1, le=9)]


class Issuers(Strict):
    """Per country, the issuer count of the last tier whose min_parties its party count reaches; market
    shares ∝ rank^−zipf_exponent (amendment 11: 2–5 per country)."""

    zipf_exponent: Annotated[float, Field(ge=0.0, le=5.0)]
    tiers: list[IssuerTier] = Field(min_length=1)

    @model_validator(mode="after")
    def _tiers(self) -> Issuers:
        if self.tiers[0].min_parties != 0:
            raise FieldError("the first tier must start at 0 parties", "tiers", 0, "min_parties")
        for i, (a, b) in enumerate(zip(self.tiers, self.tiers[1:], strict=False)):
            if b.min_parties <= a.min_parties or b.issuers < a.issuers:
                raise FieldError("tiers must rise in min_parties and not fall in issuers", "tiers", i + 1)
        return self

    def count(self, parties: int) -> int:
        return [t.issuers for t in self.tiers if parties >= t.min_parties][-1]

    @property
    def max_issuers(self) -> int:
        return self.tiers[-1].issuers


class Accounts(Strict):
    products: dict[PartyTypeName, dict[AccountType, Product]]
    tilt_clip: Annotated[float, Field(ge=0.0, le=5.0)]
    premium_exponent: Annotated[float, Field(gt=0.0, le=10.0)]
    credit_limit: CreditLimit
    # major units per US dollar (approximate 2025 averages), to state credit limits in each currency
    units_per_usd: dict[Currency, Positive]
    issuers: Issuers

    @model_validator(mode="after")
    def _products(self) -> Accounts:
        for ptype in PARTY_TYPES:
            current = self.products.get(ptype, {}).get("CURRENT")
            if current is None or not current.zero_truncated:
                raise FieldError("every party type needs a zero-truncated CURRENT product", "products", ptype)
        return self


class Slot(Strict):
    """One Bernoulli per (account, slot): p, or min(1, 2·p·digital_affinity) if digital_tilt (so p is the
    rate at the neutral score 0.5)."""

    type: InstrumentType
    p: Prob
    digital_tilt: bool = False


class BinRange(Strict):
    """8-digit BINs [lo, hi]: country c (iso_num) owns the block lo + iso_num·⌊(hi−lo+1)/1000⌋, split evenly
    among its issuers, each using its first bins_per_issuer BINs."""

    lo: Annotated[int, Field(ge=10_000_000, le=99_999_999)]
    hi: Annotated[int, Field(ge=10_000_000, le=99_999_999)]


class Validity(Strict):
    months: Annotated[int, Field(ge=1, le=120)]
    p: Prob


class Instruments(Strict):
    slots: dict[AccountType, list[Slot]]
    max_per_account: Annotated[int, Field(ge=1, le=16)]
    schemes: dict[Region, dict[Scheme, Prob]]
    bin_ranges: dict[Scheme, BinRange]
    bins_per_issuer: Annotated[int, Field(ge=1, le=1000)]
    validity: list[Validity] = Field(min_length=1)
    max_reissues: Annotated[int, Field(ge=0, le=100)]
    contactless: dict[Region, Prob]
    rails: dict[Iso2, Rail]
    default_rail: Rail

    @model_validator(mode="after")
    def _mixes(self) -> Instruments:
        for region, mix in self.schemes.items():
            check_mix(mix, "schemes", region)
            for scheme in mix:
                if scheme not in self.bin_ranges:
                    raise FieldError(f"{scheme} has no BIN range", "schemes", region, scheme)
        check_mix({str(i): v.p for i, v in enumerate(self.validity)}, "validity")
        for scheme, rng in self.bin_ranges.items():
            ordered((rng.lo, rng.hi), "bin_ranges", scheme)
        if set(self.schemes) != set(REGIONS) or set(self.contactless) != set(REGIONS):
            raise FieldError(f"give schemes and contactless for every region {', '.join(REGIONS)}", "schemes")
        return self

    def country_block(self, scheme: str) -> int:
        """BINs per country of a scheme's range."""
        rng = self.bin_ranges[scheme]
        return (rng.hi - rng.lo + 1) // 1000


# --- roles (6A.S6, design §3.1 roles.yaml and §3.8) -------------------------------------------------------
PARTY_ROLES = ("CLEAN", "MULE", "SYNTHETIC_ID", "FRIENDLY_FRAUD_PRONE", "PROMO_ABUSER", "ORGANISER")
RISK_TIERS = ("LOW", "STANDARD", "ELEVATED", "HIGH")
PartyRole = Literal[PARTY_ROLES]  # type: ignore[valid-type]
Tier = Literal[RISK_TIERS]  # type: ignore[valid-type]
NonClean = Literal[PARTY_ROLES[1:]]  # type: ignore[valid-type]
Share = Annotated[float, Field(ge=0.0, le=0.05)]
Sigma = Annotated[float, Field(ge=0.0, le=5.0)]


class PartyRisk(Strict):
    """score = logistic(intercept + Σ w_f x_f + segment effect + noise_sigma·ε), ε ~ N(0, 1) from 6A.risk.
    Features: cross_border (propensity), digital (affinity), credit_cards (CREDIT_CARD accounts held),
    neg_log_tenure (−ln(tenure months / tenure_ref_months)), single_person (household of one)."""

    intercept: Coef
    noise_sigma: Sigma
    tenure_ref_months: Annotated[float, Field(gt=0.0, le=600.0)]
    weights: dict[Literal["cross_border", "digital", "credit_cards", "neg_log_tenure", "single_person"], Coef]
    segment_effects: dict[SegmentName, Coef] = Field(default_factory=dict)


class Propagation(Strict):
    """Party → account and device risk (design §3.8 step 5) and operator devices (step 6)."""

    mule_current_account: Prob  # MULE → its CURRENT accounts become MULE_ACCOUNT
    synthetic_account: Prob  # SYNTHETIC_ID → each account becomes HIGH_RISK
    risky_party_device: Prob  # a device linked to any non-clean party becomes HIGH_RISK
    clean_account: Prob  # base rate HIGH_RISK on other accounts
    clean_device: Prob  # base rate HIGH_RISK on devices of clean parties only
    operator_high_risk: Prob  # an OPERATOR device is HIGH_RISK with this p, else SHARED_RISKY


class MerchantRisk(Strict):
    """Merchant score = logistic(intercept + high_risk_mcc·[MCC listed] + cnp·[card_not_present] + noise·ε);
    COLLUSIVE goes to the top ranks: round(p_collusive·M) merchants, at most max(1, ⌊cap·M⌋), at least 1
    when `collusive_enabled` (6B's MERCHANT_COLLUSION campaign needs one)."""

    intercept: Coef
    high_risk_mcc: Coef
    cnp: Coef
    noise_sigma: Sigma
    collusive_enabled: bool
    p_collusive: Prob
    collusive_cap: Prob
    high_risk_mccs: list[Mcc] = Field(min_length=1)


class Roles(Strict):
    party_risk: PartyRisk
    tier_cutoffs: Annotated[list[Annotated[float, Field(gt=0.0, lt=1.0)]], Field(min_length=3, max_length=3)]
    role_mix: dict[PartyTypeName, dict[Tier, dict[PartyRole, Prob]]]
    caps: dict[NonClean, Share]
    max_mules_per_organiser: Annotated[int, Field(ge=1, le=1000)]
    propagation: Propagation
    anonymiser_ip_types: list[str] = Field(min_length=1)
    shared_public_ip_types: list[str] = Field(min_length=1)
    merchants: MerchantRisk

    @model_validator(mode="after")
    def _mixes(self) -> Roles:
        if any(b <= a for a, b in zip(self.tier_cutoffs, self.tier_cutoffs[1:], strict=False)):
            raise FieldError("tier cut-offs must increase", "tier_cutoffs")
        for ptype in ("RETAIL", "BUSINESS"):
            tiers = self.role_mix.get(ptype)
            if tiers is None or set(tiers) != set(RISK_TIERS):
                raise FieldError(f"give a mix for every tier {', '.join(RISK_TIERS)}", "role_mix", ptype)
            for tier, mix in tiers.items():
                if abs(sum(mix.values()) - 1.0) > MIX_TOL:
                    raise FieldError(f"the mix sums to {sum(mix.values())!r}, not 1", "role_mix", ptype, tier)
        if set(self.caps) != set(PARTY_ROLES[1:]):
            raise FieldError(f"give a cap for every role {', '.join(PARTY_ROLES[1:])}", "caps")
        if set(self.anonymiser_ip_types) & set(self.shared_public_ip_types):
            raise FieldError("an IP type is either anonymiser or shared public", "shared_public_ip_types")
        for name in ("anonymiser_ip_types", "shared_public_ip_types"):
            unknown = sorted(set(getattr(self, name)) - set(IP_TYPES))
            if unknown:
                raise FieldError(f"unknown IP type {unknown[0]!r}; known: {', '.join(IP_TYPES)}", name)
        return self

    def cdf(self, ptype: str, tier: str) -> list[float]:
        """Cumulative role probabilities in PARTY_ROLES order (a role left out has p 0)."""
        mix = self.role_mix[ptype][tier]
        out, acc = [], 0.0
        for role in PARTY_ROLES:
            acc += mix.get(role, 0.0)
            out.append(acc)
        return out


# --- terminals, devices, ips (6A.S4 and 6A.S5, design §3.1, §3.6, §3.7) ------------------------------------
DEVICE_TYPES = ("MOBILE", "TABLET", "DESKTOP", "EMULATOR")
OPERATING_SYSTEMS = ("ANDROID", "IOS", "WINDOWS", "MACOS", "LINUX")
IP_TYPES = (
    "CORPORATE",
    "RESIDENTIAL",
    "RESIDENTIAL_PROXY",
    "MOBILE",
    "PUBLIC_WIFI",
    "HOTEL",
    "EDUCATION",
    "VPN_PROXY",
    "DATACENTRE",
)
ASN_CLASSES = ("CONSUMER_ISP", "MNO", "ENTERPRISE", "EDUCATION", "HOSTING", "VPN_PROVIDER")
CUSTOMER_LINK_KINDS = ("HOME", "MOBILE_NETWORK", "CORPORATE", "PUBLIC_WIFI", "TRAVEL", "EDUCATION", "VPN")
OPERATOR_LINK_KINDS = ("ANON_VPN", "ANON_DATACENTRE", "ANON_PROXY")
DeviceType = Literal[DEVICE_TYPES]  # type: ignore[valid-type]
CustomerDeviceType = Literal[DEVICE_TYPES[:3]]  # type: ignore[valid-type]
Os = Literal[OPERATING_SYSTEMS]  # type: ignore[valid-type]
IpType = Literal[IP_TYPES]  # type: ignore[valid-type]
AsnClass = Literal[ASN_CLASSES]  # type: ignore[valid-type]
CustomerKind = Literal[CUSTOMER_LINK_KINDS]  # type: ignore[valid-type]
OperatorKind = Literal[OPERATOR_LINK_KINDS]  # type: ignore[valid-type]
Lambda = Annotated[float, Field(ge=0.0, le=9.0)]  # truncated-Poisson means (inversion needs λ < 10)
Cap = Annotated[int, Field(ge=1, le=64)]
Factor6A = Annotated[float, Field(ge=0.0, le=10.0)]
Days = Annotated[int, Field(ge=1, le=3650)]


class PosTerminals(Strict):
    """POS terminals per CP site = 1 + Poisson(λ_class·(1 + rank_bonus·q)) truncated to [0, cap − 1], where q
    is the site's mid-rank percentile by 2B p_weight within its merchant (heaviest ≈ 1, lightest ≈ 0)."""

    lambdas: dict[DemandClass, Lambda] = Field(
        min_length=1
    )  # by 5A demand class of the site's CP profile row
    default_lambda: Lambda  # a CP class not listed
    rank_bonus: Annotated[float, Field(ge=0.0, le=2.0)]
    cap: Cap
    kiosk_share: dict[DemandClass, Prob] = Field(
        default_factory=dict
    )  # by demand class: KIOSK instead of POS


class AtmTerminals(Strict):
    """Sites of these MCCs carry ATMs only: 1 + Poisson(lam) truncated to [0, cap − 1]."""

    mccs: list[Mcc] = Field(min_length=1)
    lam: Lambda
    cap: Cap


class Terminals(Strict):
    pos: PosTerminals
    atm: AtmTerminals
    contactless: dict[Region, Prob]  # POS and KIOSK terminals, by the site country's region
    atm_contactless: dict[Region, Prob]
    # E_6A_CAP_INCONSISTENT when the truncation would cut more than this share of the untruncated law
    max_truncated_mass: Annotated[float, Field(gt=0.0, le=0.1)]

    @model_validator(mode="after")
    def _regions(self) -> Terminals:
        for name in ("contactless", "atm_contactless"):
            if set(getattr(self, name)) != set(REGIONS):
                raise FieldError(f"give every region {', '.join(REGIONS)}", name)
        return self


class HouseholdDevices(Strict):
    """A household of ≥ min_size members shares devices with p_shared: 1 + Poisson(lam) truncated to
    [0, cap − 1] of them, each linked to every member."""

    p_shared: Prob
    min_size: Annotated[int, Field(ge=2, le=10)]
    lam: Lambda
    cap: Cap


class OperatorDevices(Strict):
    """Fraud infrastructure: max(min_count, round(rate·N)) devices with no party, in countries ∝ parties."""

    rate: Annotated[float, Field(ge=0.0, le=0.01)]
    min_count: Annotated[int, Field(ge=0, le=1000)]
    type_mix: dict[DeviceType, Prob]
    os_mix: dict[DeviceType, dict[Os, Prob]]
    max_age_days: Days


class Devices(Strict):
    """Personal devices per party = 1 + Poisson(λ_segment) truncated to [0, personal_cap − 1]; type by slot
    (`first` for slot 1), OS by (region, type); first seen max(onboarding, start − u·max_age_days[type])."""

    lambdas: dict[SegmentName, Lambda]
    personal_cap: Cap
    household: HouseholdDevices
    max_devices_per_party: Cap
    max_parties_per_device: Cap
    type_mix: dict[Literal["first", "other", "shared"], dict[CustomerDeviceType, Prob]]
    os_mix: dict[Region, dict[CustomerDeviceType, dict[Os, Prob]]]
    max_age_days: dict[CustomerDeviceType, Days]
    operator: OperatorDevices

    @model_validator(mode="after")
    def _mixes(self) -> Devices:
        if set(self.lambdas) != set(SEGMENTS):
            raise FieldError("give λ for every segment", "lambdas")
        if set(self.type_mix) != {"first", "other", "shared"}:
            raise FieldError("give the type mixes first, other and shared", "type_mix")
        for slot, mix in self.type_mix.items():
            check_mix(mix, "type_mix", slot)
        if set(self.os_mix) != set(REGIONS):
            raise FieldError(f"give every region {', '.join(REGIONS)}", "os_mix")
        for region, by_type in self.os_mix.items():
            if set(by_type) != set(DEVICE_TYPES[:3]):
                raise FieldError("give an OS mix for MOBILE, TABLET and DESKTOP", "os_mix", region)
            for dtype, mix in by_type.items():
                check_mix(mix, "os_mix", region, dtype)
        if set(self.max_age_days) != set(DEVICE_TYPES[:3]):
            raise FieldError("give MOBILE, TABLET and DESKTOP", "max_age_days")
        check_mix(self.operator.type_mix, "operator", "type_mix")
        for dtype in self.operator.type_mix:
            if dtype not in self.operator.os_mix:
                raise FieldError(f"give an OS mix for {dtype}", "operator", "os_mix")
            check_mix(self.operator.os_mix[dtype], "operator", "os_mix", dtype)
        return self


class CustomerLink(Strict):
    """P(link of this kind) = min(1, p[type]·factor[segment]·exp(cross_border_tilt·(cbp − 0.5))) per customer
    device, one Bernoulli each; usage_weight = weight·(0.5 + u/p) for the lane u that made the link."""

    ip_type: IpType
    p: dict[CustomerDeviceType, Prob]
    segment_factor: dict[SegmentName, Factor6A] = Field(default_factory=dict)
    default_factor: Factor6A = 1.0
    cross_border_tilt: Annotated[float, Field(ge=0.0, le=5.0)] = 0.0
    weight: Annotated[float, Field(gt=0.0, le=10.0)]


class OperatorLink(Strict):
    ip_type: IpType
    p: Prob
    weight: Annotated[float, Field(gt=0.0, le=10.0)]


class Asns(Strict):
    """Synthetic ASNs (RFC 6996 32-bit private range): `count` per (country, class), Zipf(exponent) shares."""

    count: dict[AsnClass, Annotated[int, Field(ge=1, le=99)]]
    zipf_exponent: Annotated[float, Field(ge=0.0, le=4.0)]


class Ips(Strict):
    customer_kinds: dict[CustomerKind, CustomerLink]
    # a customer device that drew no link gets the first kind if its owner is RETAIL, else the second
    fallback_kinds: Annotated[list[CustomerKind], Field(min_length=2, max_length=2)]
    operator_kinds: dict[OperatorKind, OperatorLink]
    mean_devices_per_ip: dict[IpType, Annotated[float, Field(ge=1.0, le=1000.0)]]
    size_sigma: Annotated[float, Field(ge=0.0, le=3.0)]
    max_devices_per_ip: Annotated[int, Field(ge=1, le=100_000)]
    max_ips_per_device: Annotated[int, Field(ge=1, le=100)]
    residential_proxy_share: Prob
    asn_class: dict[IpType, AsnClass]
    asns: Asns
    site_ip_type: IpType

    @model_validator(mode="after")
    def _kinds(self) -> Ips:
        if set(self.customer_kinds) != set(CUSTOMER_LINK_KINDS):
            raise FieldError(f"give the kinds {', '.join(CUSTOMER_LINK_KINDS)}", "customer_kinds")
        if set(self.operator_kinds) != set(OPERATOR_LINK_KINDS):
            raise FieldError(f"give the kinds {', '.join(OPERATOR_LINK_KINDS)}", "operator_kinds")
        if set(self.asn_class) != set(IP_TYPES):
            raise FieldError("give an ASN class for every IP type", "asn_class")
        if set(self.asns.count) != set(ASN_CLASSES):
            raise FieldError("give a count for every ASN class", "asns", "count")
        pooled = {k.ip_type for k in (*self.customer_kinds.values(), *self.operator_kinds.values())}
        pooled -= {"RESIDENTIAL", "RESIDENTIAL_PROXY"}
        for i, ip_type in enumerate(sorted(pooled - set(self.mean_devices_per_ip))):
            raise FieldError(f"give the mean devices per IP of {ip_type}", "mean_devices_per_ip", i)
        return self


# --- validation (6A.S7, design §3.9): the metrics engine/segments/l3/s6a/s7_validation.py computes ---------
METRICS = (
    "cap_violations",
    "region_mapped_share",
    "world_size_ok",
    "max_mix_jsd",
    "card_capable_share",
    "device_coverage",
    "ip_coverage",
    "max_link_kind_gap",
    "devices_per_ip_p99",
    "non_clean_share",
    "max_role_share_over_cap",
    "collusive_merchants",
    "account_odds_ratio",
    "device_odds_ratio",
    "valid_card_share",
    "max_scheme_gap",
    "top1pct_activity_share",
    "retail_mean_household_size",
    "shared_device_share",
)

POLICIES: dict[str, type] = {
    "world": World,
    "population": Population,
    "accounts": Accounts,
    "instruments": Instruments,
    "terminals": Terminals,
    "devices": Devices,
    "ips": Ips,
    "roles": Roles,
    "validation": validation_model("6A", METRICS),
}
