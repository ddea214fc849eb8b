#!/bin/sh
# One-shot job: the namespace PortalPay runs in and the search attributes its workflow keeps
# current (SPEC §7). Idempotent: existing namespace and attributes are left alone.
set -eu

: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}"
RETENTION="${TEMPORAL_NAMESPACE_RETENTION:-720h}"

tries=0
until temporal operator cluster health --address "${TEMPORAL_ADDRESS}" >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "Temporal at ${TEMPORAL_ADDRESS} did not become healthy"; exit 1; }
  sleep 2
done

if temporal operator namespace describe --address "${TEMPORAL_ADDRESS}" -n "${TEMPORAL_NAMESPACE}" >/dev/null 2>&1; then
  echo "namespace ${TEMPORAL_NAMESPACE} exists"
else
  temporal operator namespace create --address "${TEMPORAL_ADDRESS}" -n "${TEMPORAL_NAMESPACE}" --retention "${RETENTION}"
fi

existing=$(temporal operator search-attribute list --address "${TEMPORAL_ADDRESS}" -n "${TEMPORAL_NAMESPACE}")
for attribute in PaymentStatus:Keyword InvoiceId:Keyword CustomerId:Keyword PayerContactId:Keyword AmountCents:Int StatusSince:Datetime PaymentId:Keyword; do
  name="${attribute%%:*}"
  type="${attribute#*:}"
  if printf '%s\n' "$existing" | grep -qw "$name"; then
    echo "search attribute $name exists"
  else
    temporal operator search-attribute create --address "${TEMPORAL_ADDRESS}" -n "${TEMPORAL_NAMESPACE}" \
      --name "$name" --type "$type"
  fi
done
echo "namespace ${TEMPORAL_NAMESPACE} ready"
