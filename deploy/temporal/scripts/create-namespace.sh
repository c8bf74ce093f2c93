#!/bin/sh
# Create the namespace the handshake-obs services use, once Temporal answers.
set -eu
namespace=${DEFAULT_NAMESPACE:-default}
address=${TEMPORAL_ADDRESS:-temporal:7233}

echo "waiting for Temporal at $address"
until temporal operator cluster health --address "$address"; do sleep 2; done

temporal operator namespace describe -n "$namespace" --address "$address" \
  || temporal operator namespace create -n "$namespace" --address "$address"
echo "namespace $namespace is ready"
