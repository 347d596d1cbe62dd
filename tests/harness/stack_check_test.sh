#!/usr/bin/env bash
# tests/harness/stack_check_test.sh — scripts/stack_check.sh fails on a planted violation of each
# kind and passes a straight tree, so that its passing on ferry means something.
#   - a mini tree of five rooms, built by CMake with the real scripts/stack_graph.cmake: straight, it
#     passes; each planted include, link (public and private), foreign source file and flag name fails
#     with its own line; comments, a launcher's flag (srun --mpi) and a build tool's own flags pass;
#   - the known-violations list: a listed violation passes, a listed one that is gone fails;
#   - a copy of ferry's own rooms: an include planted in kernels/ and a flag planted in a string of
#     engine/ are both found.
# Usage: stack_check_test.sh SOURCE_DIR CMAKE
set -euo pipefail
src=$1
cmake=${2:-cmake}
check=$src/scripts/stack_check.sh
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failures=0

fail() {
  echo "FAILED: $*"
  failures=$((failures + 1))
}

# expect RC PATTERN TREE GRAPH [KNOWN]: the check's exit status is RC and its output matches PATTERN.
expect() {
  local rc=$1 pattern=$2 tree=$3 graph=$4 known=${5:-/dev/null} out got=0
  out=$(bash "$check" "$tree" "$graph" "$known" 2>&1) || got=$?
  if [[ $got != "$rc" ]]; then
    fail "expected exit $rc, got $got (looking for '$pattern'):"$'\n'"$out"
  elif ! grep -qE -- "$pattern" <<<"$out"; then
    fail "exit $rc as expected, but no line matches '$pattern':"$'\n'"$out"
  else
    echo "ok: exit $rc, '$pattern'"
  fi
}

# ---- a mini tree -----------------------------------------------------------------------------------
mini=$scratch/mini
make_mini() {
  rm -rf "$mini"
  mkdir -p "$mini"/{base,kernels,engine,parallel,tools,scripts}
  cp "$src/scripts/stack_graph.cmake" "$mini/scripts/"
  cat >"$mini/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.24)
project(mini CXX)
include_directories(${CMAKE_SOURCE_DIR})
foreach(room base kernels engine parallel tools)
  add_subdirectory(${room})
endforeach()
include(scripts/stack_graph.cmake)
ferry_write_stack_graph(${CMAKE_BINARY_DIR}/stack_graph.txt)
EOF
  local below=""
  for room in base kernels engine parallel tools; do
    echo "int ${room}_fn() { return 1; }" >"$mini/$room/$room.cpp"
    echo "add_library(mini_$room STATIC $room.cpp)" >"$mini/$room/CMakeLists.txt"
    [[ -n $below ]] && echo "target_link_libraries(mini_$room PUBLIC mini_$below)" >>"$mini/$room/CMakeLists.txt"
    below=$room
  done
  # Lawful things the flag scan must not report: a comment naming a flag, a launcher's own flag, a
  # string with a flag-like word that is not a ferry flag, and a build tool's own command line.
  cat >"$mini/tools/cli.cpp" <<'EOF'
void setup(App& app) { app.add_option("--tp,-t", tp, "tensor-parallel ranks"); app.add_flag("--zero1"); }
EOF
  cat >"$mini/parallel/launch.cpp" <<'EOF'
// A bad --tp is refused by the command line ("--tp" in a comment is fine).
const char* advice = "launch with `srun --mpi=pmix`";
const char* dashes = "-----";
const int big = 1'000'000;
const char quote = '"';
EOF
  cat >"$mini/kernels/tool.cpp" <<'EOF'
int main(int argc, char** argv) { return argc > 1 && std::string(argv[1]) == "--tp"; }
EOF
}

# One build folder for every configure, so the compiler is detected once (seconds, not minutes, on
# a loaded machine).
configure_mini() {
  "$cmake" -S "$mini" -B "$scratch/mini_build" >"$scratch/cmake.log" 2>&1 || { cat "$scratch/cmake.log"; exit 1; }
}

make_mini
configure_mini
clean=$scratch/clean_graph.txt  # the straight mini tree's graph, for the checks that plant no link
cp "$scratch/mini_build/stack_graph.txt" "$clean"
expect 0 'the stack is straight' "$mini" "$clean"

# Includes up the stack, one room at a time.
plant_include() {  # FILE INCLUDED
  make_mini
  printf '#include "%s"\n' "$2" >>"$mini/$1"
}
plant_include kernels/kernels.cpp engine/engine.h
expect 1 '^stack_check: kernels/kernels.cpp:2 includes engine/engine.h: kernels/ may include only base, kernels$' \
  "$mini" "$clean"
plant_include engine/engine.cpp tools/cli.h
expect 1 '^stack_check: engine/engine.cpp:2 includes tools/cli.h' "$mini" "$clean"
plant_include engine/engine.cpp parallel/parallel_step.h
expect 1 '^stack_check: engine/engine.cpp:2 includes parallel/parallel_step.h' "$mini" "$clean"
plant_include parallel/parallel.cpp tools/cli.h
expect 1 '^stack_check: parallel/parallel.cpp:2 includes tools/cli.h' "$mini" "$clean"
plant_include base/base.cpp kernels/matmul.h
expect 1 '^stack_check: base/base.cpp:2 includes kernels/matmul.h' "$mini" "$clean"
make_mini
printf '#  include <engine/graph.h>\n' >>"$mini/kernels/kernels.cpp"
expect 1 '^stack_check: kernels/kernels.cpp:2 includes engine/graph.h' "$mini" "$clean"

# The build graph: links up the stack (public and private) and another room's source, through CMake.
make_mini
echo "target_link_libraries(mini_kernels PUBLIC mini_engine)" >>"$mini/kernels/CMakeLists.txt"
configure_mini
expect 1 '^stack_check: build: mini_kernels \(kernels/\) links mini_engine \(engine/\)' "$mini" "$scratch/mini_build/stack_graph.txt"
make_mini
echo "target_link_libraries(mini_engine PRIVATE mini_parallel)" >>"$mini/engine/CMakeLists.txt"
configure_mini
expect 1 '^stack_check: build: mini_engine \(engine/\) links mini_parallel \(parallel/\)' "$mini" "$scratch/mini_build/stack_graph.txt"
make_mini
echo "target_sources(mini_parallel PRIVATE \${CMAKE_SOURCE_DIR}/tools/cli.cpp)" >>"$mini/parallel/CMakeLists.txt"
echo "int tools_empty() { return 0; }" >"$mini/tools/cli.cpp"
configure_mini
expect 1 '^stack_check: build: mini_parallel \(parallel/\) compiles tools/cli.cpp, a file of tools/' \
  "$mini" "$scratch/mini_build/stack_graph.txt"

# A ferry flag in a lower room's string (not in a comment, not a launcher's).
make_mini
echo 'void f(int tp) { if (tp < 1) user_error("--tp ", tp, ": must be at least 1"); }' >>"$mini/parallel/parallel.cpp"
expect 1 '^stack_check: parallel/parallel.cpp:2 names the flag --tp' "$mini" "$clean"
make_mini
printf 'const char* s =\n    "zero1 is set by --zero1";\n' >>"$mini/engine/engine.cpp"
expect 1 '^stack_check: engine/engine.cpp:3 names the flag --zero1' "$mini" "$clean"
make_mini
echo 'const char* s = R"(use --tp)";' >>"$mini/kernels/kernels.cpp"
expect 1 '^stack_check: kernels/kernels.cpp:2 names the flag --tp' "$mini" "$clean"
make_mini
echo 'const char* s = "use --tp";' >>"$mini/tools/tools.cpp"
expect 0 'the stack is straight' "$mini" "$clean"

# The known-violations list: listed passes (and says so), listed but gone fails.
plant_include engine/engine.cpp parallel/parallel_step.h
echo "include engine/engine.cpp parallel/parallel_step.h" >"$scratch/known.txt"
expect 0 '^stack_check: known, to fix: engine/engine.cpp:2 includes parallel/parallel_step.h' \
  "$mini" "$clean" "$scratch/known.txt"
make_mini
expect 1 "'include engine/engine.cpp parallel/parallel_step.h' is listed in known.txt but no longer found" \
  "$mini" "$clean" "$scratch/known.txt"

# ---- ferry's own rooms --------------------------------------------------------------------------------
real=$scratch/real
mkdir -p "$real/scripts"
for room in base kernels engine parallel tools; do cp -r "$src/$room" "$real/"; done
: >"$scratch/no_graph.txt"
echo '#include "engine/graph.h"' >>"$real/kernels/matmul.h"
line=$(wc -l <"$real/kernels/matmul.h")
echo 'void planted(int tp) { if (tp < 1) user_error("--tp must be positive"); }' >>"$real/engine/planner.cpp"
pline=$(wc -l <"$real/engine/planner.cpp")
expect 1 "^stack_check: kernels/matmul.h:$line includes engine/graph.h" "$real" "$scratch/no_graph.txt"
expect 1 "^stack_check: engine/planner.cpp:$pline names the flag --tp" "$real" "$scratch/no_graph.txt"

# Bad arguments are refused with a line.
expect 2 'does not exist' "$scratch/nowhere" "$scratch/no_graph.txt"

if ((failures > 0)); then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
