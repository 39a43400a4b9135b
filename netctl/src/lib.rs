//! Bridge networking (veth, IPAM, nftables, embedded DNS). Not built yet.
