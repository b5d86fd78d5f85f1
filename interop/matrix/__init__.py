"""The implementation x implementation interop matrix (ci/interop.sh): expectations derived from
the twin, scenarios driven through the manifests' adapters, Markdown/JSON/HTML reports."""
