#!/usr/bin/env bash
# Determinism (DESIGN.md §5): a bitstream made once decodes to exactly the
# same symbols under every BLIS kernel family this CPU supports, with 1 and
# 2 threads, and in every other build given (e.g. clang -O0); the pixels
# stay within PIXEL_TOLERANCE levels of the reference decode. For a seeded
# random model and for the shipped default model (models/default.gguf).
#
#   determinism.sh TOOL [OTHER_BUILD_TOOL ...]
#
# TOOL is tests/tool_codec of the main build.
set -euo pipefail
tool=$1
shift
others=("$@")
PIXEL_TOLERANCE=${PIXEL_TOLERANCE:-2}

work=$(mktemp -d /tmp/mrt-determinism-XXXXXX)
trap 'rm -rf "$work"' EXIT

# BLIS kernel families by id (blis.h arch_t): 0 skx, 3 haswell,
# 4 sandybridge, 6 zen3, 7 zen2, 8 zen, 25 generic. Only those this CPU can run.
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
families=(25)
if [[ $flags == *" avx "* ]]; then families+=(4); fi
if [[ $flags == *" avx2 "* && $flags == *" fma "* ]]; then families+=(3 6 7 8); fi
if [[ $flags == *" avx512f "* && $flags == *" avx512dq "* && $flags == *" avx512bw "* && $flags == *" avx512vl "* ]]; then
  families+=(0)
fi

# A seeded random model, and the shipped default (trained weights, 4 latent
# tokens per window) when the checkout has it.
"$tool" model "$work/model.gguf" 11
models=("$work/model.gguf")
shipped=$(dirname "$0")/../models/default.gguf
[[ -f $shipped ]] && models+=("$shipped")
sizes=("1 1" "67 45" "200 130" "96 300")
fail=0
checks=0
for model in "${models[@]}"; do
for i in "${!sizes[@]}"; do
  read -r w h <<<"${sizes[$i]}"
  want=$("$tool" encode "$model" "$w" "$h" "$i" "$work/s$i.mrt")
  "$tool" decode "$model" "$work/s$i.mrt" "$work/ref$i.rgb" >/dev/null
  runs=()
  for fam in "${families[@]}"; do
    for threads in 1 2; do runs+=("$fam $threads $tool"); done
  done
  for other in "${others[@]}"; do runs+=("- 2 $other"); done
  for run in "${runs[@]}"; do
    read -r fam threads bin <<<"$run"
    if [[ $fam == - ]]; then envs=(); else envs=(BLIS_ARCH_TYPE=$fam); fi
    got=$(env "${envs[@]}" MRT_THREADS=$threads "$bin" decode "$model" "$work/s$i.mrt" "$work/out.rgb")
    diff=$("$tool" diff "$work/ref$i.rgb" "$work/out.rgb")
    checks=$((checks + 1))
    label="$(basename "$model") ${w}x${h} family=$fam threads=$threads build=$bin"
    if [[ $got != "$want" ]]; then
      echo "FAIL $label: symbol trace $got, encoder had $want"; fail=$((fail + 1))
    elif (( diff > PIXEL_TOLERANCE )); then
      echo "FAIL $label: pixels differ by $diff levels (tolerance $PIXEL_TOLERANCE)"; fail=$((fail + 1))
    else
      echo "ok   $label: trace $got, pixels within $diff"
    fi
  done
done
done
echo "determinism: $checks checks, $fail failed (families: ${families[*]})"
exit $(( fail > 0 ))
