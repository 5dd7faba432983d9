#!/usr/bin/env bash
# A validator's own acceptance rule, in bash + jq, for the fedstake validator daemon's decision hook
# (the node config's "decide": { "command": ["./rule.sh"] }). The daemon does everything else: it
# fetches and checks every revealed update, commits and reveals the vote, finalizes, aggregates, attests,
# slashes and claims. Once per round, in the vote-commit phase, it runs this program with the round's
# evaluation on stdin (the document `fedstake vote evaluate --json` prints) and votes for the indices
# it prints, as a JSON array. A non-zero exit, no answer within "timeoutMs" or an index the round does
# not have makes the validator abstain for that round (or use the built-in vote: "onFailure": "builtin").
#
# This rule accepts an update when it decodes, was trained on at least MIN_SAMPLES samples, points the
# same way as the round's other updates (cosine to their coordinate median above MIN_COSINE), leaves
# the held-out loss within MAX_LOSS_RATIO of the base model's, and passes the job's copy check.
set -euo pipefail

MIN_SAMPLES=${MIN_SAMPLES:-400}
MIN_COSINE=${MIN_COSINE:-0}
MAX_LOSS_RATIO=${MAX_LOSS_RATIO:-1.1}

jq -c --argjson minSamples "$MIN_SAMPLES" --argjson minCosine "$MIN_COSINE" --argjson maxLoss "$MAX_LOSS_RATIO" '
  (.heldOut.loss // null) as $base
  | [ .updates[]
      | select(.decodable)
      | select((.numSamples | tonumber) >= $minSamples)
      | select(.cosine > $minCosine)
      | select($base == null or .loss == null or .loss <= $base * $maxLoss)
      | select(.rules.duplicate.pass != false)
      | .index ]'
