# slurm.mk: a real single-node Slurm cluster on localhost, for the tests of
# internal/slurm and `arbench slurm`. Included by the top-level Makefile.
#
#   make slurm-up     # install Debian's slurmctld, slurmd, slurm-client and
#                     # munge (apt-get, only when missing) and start munged,
#                     # slurmctld and slurmd directly (no systemd), with
#                     # /etc/slurm/slurm.conf for one node `localhost`;
#                     # waits until the node is idle. Idempotent. As root.
#   make slurm-down   # stop slurmd, slurmctld and munged
#   make test-slurm   # internal/slurm's tests and cmd/arbench's Slurm tests
#                     # (TestSlurmEndToEnd: a sweep of 3 shards, a failed
#                     # shard, -resubmit; about 15 s on 2 CPUs) with the
#                     # integration tests required: they fail, instead of
#                     # skipping, when `sinfo` does not answer
#
# CI (.ci/run) calls `make slurm-up test-slurm`, so both are tested
# against a real Slurm on every fresh machine. Without slurm-up (a plain
# `make test` on a laptop) the integration tests skip, naming `make slurm-up`.
# test-slurm does not depend on slurm-up: on a machine that already has a
# Slurm of its own (a cluster's login node), `make test-slurm` runs against
# it, and slurm-up refuses to replace its slurm.conf.
# Logs: /var/log/slurm/slurmctld.log, /var/log/slurm/slurmd.log.

SLURM_TEST_TIMEOUT ?= 5m

.PHONY: slurm-up slurm-down test-slurm

slurm-up:
	scripts/slurm-up.sh

slurm-down:
	scripts/slurm-down.sh

test-slurm:
	ARBENCH_REQUIRE_SLURM=1 $(GO) test -count=1 -timeout $(SLURM_TEST_TIMEOUT) ./internal/slurm/
	ARBENCH_REQUIRE_SLURM=1 $(GO) test -count=1 -timeout $(SLURM_TEST_TIMEOUT) -run 'Slurm|Integration' ./cmd/arbench/
