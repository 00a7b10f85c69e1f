"""Segment 6A — the entity world: parties, accounts, instruments, terminals, devices, IPs and static fraud
roles (design layer2_3.md §3 and its amendments)."""
