#!/usr/bin/env bash
# scripts/stack_check.sh — the stack is straight: base ← kernels ← engine ← parallel ← tools.
# A room may use its own files and the rooms below it, never one above (docs/ARCHITECTURE.md):
#   1. includes: no file of base/ includes kernels/ or above, of kernels/ engine/ or above, of
#      engine/ parallel/ or tools/, of parallel/ tools/;
#   2. the build graph (CMake's own, written at configure time by scripts/stack_graph.cmake): no
#      library of a room links a library of a room above it or compiles a source file of another room;
#   3. flags: no string literal of base/, kernels/, engine/ or parallel/ names a command-line flag
#      (`--tp`); lower rooms name the setting (`tp`), the command line adds the flag. A file with its
#      own main() (a build tool such as kernels/emulator/translate.cpp) owns its flags and is skipped.
# Violations listed in scripts/stack_known_violations.txt are reported but pass, until they are
# fixed; a listed one that is no longer found fails (delete its line).
#
# Usage: stack_check.sh SOURCE_DIR GRAPH_FILE [KNOWN_FILE]   (ctest runs it: test stack_check)
# Exit 0: straight; 1: violations (one line each); 2: bad arguments.
set -euo pipefail

if (($# < 2)); then
  echo "usage: stack_check.sh SOURCE_DIR GRAPH_FILE [KNOWN_FILE]" >&2
  exit 2
fi
src=$1
graph=$2
known=${3:-$src/scripts/stack_known_violations.txt}
[[ -d $src ]] || { echo "stack_check: source folder '$src' does not exist" >&2; exit 2; }
[[ -f $graph ]] || { echo "stack_check: build graph '$graph' does not exist (configure the build first)" >&2; exit 2; }

rooms=(base kernels engine parallel tools)
rank() {
  local i
  for i in "${!rooms[@]}"; do
    if [[ ${rooms[$i]} == "$1" ]]; then
      echo "$i"
      return
    fi
  done
  echo -1
}
below() {  # the rooms a file of room $1 may use, for messages
  local r i out=""
  r=$(rank "$1")
  for ((i = 0; i <= r; i++)); do out+="${out:+, }${rooms[$i]}"; done
  echo "$out"
}

found=()  # one key per violation: "include FILE TARGET", "link LIB DEP", "source LIB FILE", "flag FILE FLAG"
lines=()  # the same, as the message printed

# ---- 1. includes --------------------------------------------------------------------------------
cd "$src"
while IFS= read -r hit; do
  file=${hit%%:*}
  rest=${hit#*:}
  line=${rest%%:*}
  text=${rest#*:}
  target=$(sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]([^">]+)[">].*/\1/' <<<"$text")
  room=${file%%/*}
  troom=${target%%/*}
  if (($(rank "$troom") > $(rank "$room"))); then
    found+=("include $file $target")
    lines+=("$file:$line includes $target: $room/ may include only $(below "$room")")
  fi
done < <(grep -rnE --include='*.h' --include='*.hpp' --include='*.cpp' --include='*.cc' --include='*.cu' \
           --include='*.cuh' --include='*.inc' '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<](base|kernels|engine|parallel|tools)/' \
           base kernels engine parallel tools 2>/dev/null || true)

# ---- 2. the build graph ---------------------------------------------------------------------------
# Lines: "link TARGET ROOM DEP DEP_ROOM" and "source TARGET ROOM FILE FILE_ROOM" (stack_graph.cmake).
while read -r kind target room what wroom; do
  [[ -z ${kind:-} || $kind == \#* ]] && continue
  case $kind in
    link)
      if (($(rank "$wroom") > $(rank "$room"))); then
        found+=("link $target $what")
        lines+=("build: $target ($room/) links $what ($wroom/): $room/ may link only $(below "$room")")
      fi
      ;;
    source)
      if [[ $wroom != "$room" ]]; then
        found+=("source $target $what")
        lines+=("build: $target ($room/) compiles $what, a file of $wroom/: a room's library is built from its own files")
      fi
      ;;
    *)
      echo "stack_check: $graph: unknown line '$kind $target ...'" >&2
      exit 2
      ;;
  esac
done <"$graph"

# ---- 3. flag names in lower rooms' strings ------------------------------------------------------------
# The flags of the `ferry` command line, as tools/ declares them (add_option/add_flag("--name,-n")).
ferry_flags=$(grep -rhoE 'add_(option|flag)\("[^"]*"' tools 2>/dev/null | sed -E 's/^[^"]*"//; s/"$//' | tr ',' '\n' |
              grep -E '^--[a-z]' | sort -u | tr '\n' ' ' || true)
export FERRY_FLAGS=" $ferry_flags"
# perl: drop comments, keep string literals, report each "--name" inside one that is a ferry flag
# (not `srun --mpi=pmix`, a launcher's own flag, which parallel/ may well advise).
while IFS=$'\t' read -r file line flag; do
  found+=("flag $file $flag")
  lines+=("$file:$line names the flag $flag: below tools/, name the setting; the command line adds the flag")
done < <(find base kernels engine parallel -type f \( -name '*.h' -o -name '*.hpp' -o -name '*.cpp' -o -name '*.cc' \
           -o -name '*.cu' -o -name '*.cuh' \) -print0 2>/dev/null | sort -z |
         xargs -0 -r perl -e '
  for my $file (@ARGV) {
    open(my $fh, "<", $file) or next;
    local $/; my $s = <$fh>; close $fh;
    next if $s =~ /^\s*(?:int|auto)\s+main\s*\(/m;   # its own command line
    my $line = 1; my $i = 0; my $n = length $s;
    while ($i < $n) {
      my $c = substr($s, $i, 1);
      if ($c eq "\n") { $line++; $i++; next; }
      if (substr($s, $i, 2) eq "//") { my $e = index($s, "\n", $i); $i = $e < 0 ? $n : $e; next; }
      if (substr($s, $i, 2) eq "/*") {
        my $e = index($s, "*/", $i + 2); $e = $n if $e < 0;
        $line += (substr($s, $i, $e - $i) =~ tr/\n//); $i = $e + 2; next;
      }
      if ($c eq "R" && substr($s, $i + 1, 1) eq "\"" && ($i == 0 || substr($s, $i - 1, 1) !~ /\w/)) {
        my $open = index($s, "(", $i); my $delim = substr($s, $i + 2, $open - $i - 2);
        my $e = index($s, ")$delim\"", $open); $e = $n if $e < 0;
        my $lit = substr($s, $open + 1, $e - $open - 1); my $start = $line;
        $line += ($lit =~ tr/\n//); $i = $e + length($delim) + 2;
        while ($lit =~ /(?<![\w-])(--[a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?![\w-])/g) { print "$file\t$start\t$1\n" if index($ENV{FERRY_FLAGS}, " $1 ") >= 0; }
        next;
      }
      if ($c eq "\x27" && $i > 0 && substr($s, $i - 1, 1) =~ /[0-9a-fA-F]/) { $i++; next; }  # 1'000'000
      if ($c eq "\x27") {   # a character literal
        $i++; while ($i < $n && substr($s, $i, 1) ne "\x27") { $i += substr($s, $i, 1) eq "\\" ? 2 : 1; } $i++; next;
      }
      if ($c eq "\"") {
        my $start = $line; my $lit = ""; $i++;
        while ($i < $n && substr($s, $i, 1) ne "\"") {
          my $d = substr($s, $i, 1);
          if ($d eq "\\") { $lit .= substr($s, $i, 2); $i += 2; next; }
          $line++ if $d eq "\n";
          $lit .= $d; $i++;
        }
        $i++;
        while ($lit =~ /(?<![\w-])(--[a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?![\w-])/g) { print "$file\t$start\t$1\n" if index($ENV{FERRY_FLAGS}, " $1 ") >= 0; }
        next;
      }
      $i++;
    }
  }' || true)

# ---- verdict --------------------------------------------------------------------------------------
declare -A expected=()
if [[ -f $known ]]; then
  while IFS= read -r k; do
    [[ -z $k || $k == \#* ]] && continue
    expected[$k]=1
  done <"$known"
fi
status=0
declare -A seen=()
for i in "${!found[@]}"; do
  k=${found[$i]}
  seen[$k]=1
  if [[ -n ${expected[$k]:-} ]]; then
    echo "stack_check: known, to fix: ${lines[$i]}"
  else
    echo "stack_check: ${lines[$i]}"
    status=1
  fi
done
for k in "${!expected[@]}"; do
  if [[ -z ${seen[$k]:-} ]]; then
    echo "stack_check: '$k' is listed in $(basename "$known") but no longer found: delete its line"
    status=1
  fi
done
if ((status == 0)); then
  echo "stack_check: the stack is straight (${#found[@]} known violation(s) left to fix)"
fi
exit $status
