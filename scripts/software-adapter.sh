#!/usr/bin/env bash
# A software WebGPU adapter for tests and CI on machines without a GPU: Mesa's lavapipe (Vulkan on the CPU) from
# bookworm-backports, unpacked with `dpkg -x` into .software-adapter/ in the project. The system is untouched:
# apt reads a private sources list and lists folder, nothing is installed, and only processes that set the
# variables in .software-adapter/env.json (the tests do; `source .software-adapter/env.sh` for a shell) see it.
#
# Why lavapipe and not Debian's stock EGL/GLES path: it runs Dawn's Vulkan backend in core mode, the same path
# an NVIDIA GPU takes on Linux, with no compatibility-mode restrictions; it reports itself as a fallback
# adapter; and it needs no system package installed. Debian 12's own lavapipe (Mesa 22.3) is rejected by Dawn.
#
#   scripts/software-adapter.sh          fetch if missing, then check that Dawn gets an adapter
#   scripts/software-adapter.sh --force  fetch again
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD/.software-adapter"
ARCH="$(dpkg --print-architecture)"
case "$ARCH" in
  amd64) MULTIARCH=x86_64-linux-gnu ;;
  arm64) MULTIARCH=aarch64-linux-gnu ;;
  *) MULTIARCH="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)" || { echo "software-adapter: unsupported architecture $ARCH" >&2; exit 1; } ;;
esac

fail() {
  echo "software-adapter: $*" >&2
  exit 1
}

fetch() {
  command -v apt-get >/dev/null && command -v dpkg >/dev/null || fail "needs a Debian system (apt-get, dpkg)"
  rm -rf "$ROOT"
  local apt="$ROOT/apt"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs" "$ROOT/root"
  # Same mirror as the system's bookworm entry (deb822 or one-line format), deb.debian.org otherwise.
  local uri
  uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk 'BEGIN { RS = "" } {
    u = ""; ok = 0; n = split($0, L, "\n")
    for (i = 1; i <= n; i++) {
      if (L[i] ~ /^URIs:/) { split(L[i], w, /[ \t]+/); u = w[2] }
      if (L[i] ~ /^Suites:/ && L[i] ~ /[ \t]bookworm([ \t]|$)/) ok = 1
    }
    if (ok && u != "") { print u; exit }
  }')"
  [ -n "$uri" ] || uri="$(grep -hsE '^deb .* bookworm( |$)' /etc/apt/sources.list | head -1 | sed -E 's/\[[^]]*\] //' | awk '{print $2}')"
  [ -n "$uri" ] || uri=http://deb.debian.org/debian
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  {
    for suite in bookworm bookworm-updates bookworm-backports; do
      echo "deb [signed-by=$keyring] $uri $suite main"
    done
  } >"$apt/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "APT::Sandbox::User=root")
  echo "software-adapter: reading bookworm-backports package lists ($uri)"
  apt-get -qq "${opts[@]}" update || fail "apt-get update failed (is $uri reachable?)"
  # lavapipe from backports; the rest of what it links is the system's. Packages the system lacks entirely
  # (a bare image) are listed by a simulated install and unpacked too.
  local want=(mesa-vulkan-drivers/bookworm-backports)
  local sim missing
  sim="$(apt-get -s "${opts[@]}" install --no-install-recommends "${want[@]}" 2>&1 || true)"
  grep -q '^Inst mesa-vulkan-drivers ' <<<"$sim" ||
    echo "software-adapter: warning: apt could not resolve lavapipe's dependencies here ($(tail -1 <<<"$sim")); the library check below decides" >&2
  missing="$(awk '/^Inst / && $3 !~ /^\[/ {print $2}' <<<"$sim" | grep -vx mesa-vulkan-drivers || true)"
  (
    cd "$apt/debs"
    # shellcheck disable=SC2086
    apt-get -qq "${opts[@]}" download "${want[@]}" $missing 2>&1 | grep -v 'unsandboxed' || true
  )
  ls "$apt/debs"/mesa-vulkan-drivers_*.deb >/dev/null 2>&1 || fail "could not download mesa-vulkan-drivers from bookworm-backports"
  for deb in "$apt/debs"/*.deb; do dpkg -x "$deb" "$ROOT/root"; done
  local lib="$ROOT/root/usr/lib/$MULTIARCH"
  [ -f "$lib/libvulkan_lvp.so" ] || fail "libvulkan_lvp.so missing from the unpacked package"
  local version
  version="$(dpkg-deb -f "$apt"/debs/mesa-vulkan-drivers_*.deb Version)"
  # The ICD manifest names the library by absolute path, so the Vulkan loader needs no library path.
  cat >"$ROOT/lvp_icd.json" <<EOF
{ "file_format_version": "1.0.0", "ICD": { "library_path": "$lib/libvulkan_lvp.so", "api_version": "1.3.0" } }
EOF
  mkdir -p "$ROOT/run" && chmod 700 "$ROOT/run"
  # Extra libraries only when a package had to be unpacked because the system lacks it.
  local ldpath=""
  [ -n "$missing" ] && ldpath="$lib"
  cat >"$ROOT/env.json" <<EOF
{
  "mesa": "$version",
  "env": {
    "VK_ICD_FILENAMES": "$ROOT/lvp_icd.json",
    "VK_DRIVER_FILES": "$ROOT/lvp_icd.json",
    "XDG_RUNTIME_DIR": "$ROOT/run"$([ -n "$ldpath" ] && printf ',\n    "LD_LIBRARY_PATH": "%s"' "$ldpath")
  }
}
EOF
  {
    echo "# source this file: a shell whose WebGPU (Dawn) sees Mesa $version lavapipe"
    echo "export VK_ICD_FILENAMES='$ROOT/lvp_icd.json' VK_DRIVER_FILES='$ROOT/lvp_icd.json' XDG_RUNTIME_DIR='$ROOT/run'"
    [ -n "$ldpath" ] && echo "export LD_LIBRARY_PATH='$ldpath'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
  } >"$ROOT/env.sh"
  rm -rf "$apt"
  echo "software-adapter: Mesa $version lavapipe unpacked into $ROOT${missing:+ (with: $(echo $missing))}"
}

if [ "${1:-}" = "--force" ] || [ ! -f "$ROOT/env.json" ]; then fetch; fi

# Check: ldd resolves everything lavapipe links, then Dawn (the `webgpu` package) gets the adapter.
# shellcheck disable=SC1091
source "$ROOT/env.sh"
lib="$ROOT/root/usr/lib/$MULTIARCH/libvulkan_lvp.so"
if ldd "$lib" | grep -q 'not found'; then
  fail "libraries lavapipe needs are missing: $(ldd "$lib" | grep 'not found' | awk '{print $1}' | tr '\n' ' ')(rerun with --force)"
fi
[ -d node_modules/webgpu ] || fail "node_modules/webgpu missing: run npm ci first"
node --input-type=module -e "
const { create, globals } = await import('webgpu');
const adapter = await create([]).requestAdapter();
if (!adapter) { console.error('software-adapter: Dawn found no adapter with VK_ICD_FILENAMES=' + process.env.VK_ICD_FILENAMES); process.exit(1); }
const i = adapter.info;
console.log('software-adapter: ok, ' + [i.vendor, i.architecture, i.description].join(' / ') +
  ', fallback ' + i.isFallbackAdapter + ', maxStorageBufferBindingSize ' + adapter.limits.maxStorageBufferBindingSize);
void globals;
process.exit(0);
" 2> >(grep -v -e '^Warning: max' -e XDG_RUNTIME_DIR >&2)
