#!/usr/bin/env bash
# flash-firmware.sh PORT [IMAGE_PREFIX]: write the ESP8266 sensor firmware over its serial port.
# Called by `make flash-firmware PORT=/dev/ttyUSB0`.
#
#   PORT          the board's USB serial port (/dev/ttyUSB0, /dev/ttyACM0, a /dev/serial/by-id link).
#   IMAGE_PREFIX  the images `make firmware` wrote, without the address part: every file
#                 IMAGE_PREFIX0x<address>.bin is written at <address> (esptool elf2image names them
#                 so: sensor-0x00000.bin, sensor-0x10000.bin). Default:
#                 firmware/target/esp8266/image/sensor-
#
# Environment:
#   BAUD=460800      the baud rate while flashing (115200 for long or poor cables).
#   FLASH_MODE=...   qio|qout|dio|dout: rewrite the image header's flash mode (some modules need dio);
#                    default: keep what the build wrote.
#   ERASE=1          erase the whole flash first (the first NONOS SDK image: the SDK's RF calibration and
#                    system parameter sectors must start blank).
#   ESPTOOL=...      the esptool to run (default: the one `make deps` installs).
#
# Exit status: 0 written; 1 esptool failed (the board may hold a partial image: flash again);
# 2 usage error or refused (nothing sent to the board).
set -euo pipefail

readonly EXIT_REFUSED=2
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")

usage() {
  cat >&2 <<'EOF'
usage: flash-firmware.sh PORT [IMAGE_PREFIX]
       make flash-firmware PORT=/dev/ttyUSB0 [ESP8266_SDK=dir] [BAUD=460800] [FLASH_MODE=dio] [ERASE=1]
Writes every IMAGE_PREFIX0x<address>.bin (default firmware/target/esp8266/image/sensor-, from
`make firmware`) at its address with esptool write-flash.
EOF
  exit "$EXIT_REFUSED"
}

# One line on stderr that names the problem; nothing has been sent to the board when this runs.
refuse() {
  printf 'flash-firmware: refusing: %s\n' "$*" >&2
  exit "$EXIT_REFUSED"
}

info() { printf 'flash-firmware: %s\n' "$*"; }

if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then usage; fi
PORT=$1
PREFIX=${2:-$ROOT/firmware/target/esp8266/image/sensor-}
BAUD=${BAUD:-460800}
FLASH_MODE=${FLASH_MODE:-keep}
ESPTOOL=${ESPTOOL:-${XDG_CACHE_HOME:-$HOME/.cache}/tmc/esptool-venv/bin/esptool}
[ -n "$PORT" ] || usage

# The port: a character device we can open read-write (a typo such as /dev/sdb must not get
# esptool's handshake, and a permission problem is better named than esptool's traceback).
if [ ! -e "$PORT" ]; then
  refuse "$PORT does not exist (is the board plugged in? ls /dev/ttyUSB* /dev/ttyACM* /dev/serial/by-id/)"
fi
[ -c "$PORT" ] || refuse "$PORT is not a serial port (not a character device)"
if [ ! -r "$PORT" ] || [ ! -w "$PORT" ]; then
  refuse "$PORT is not readable and writable by $(id -un): add yourself to its group ($(stat -L -c %G "$PORT")) and log in again"
fi

case "$BAUD" in
  '' | *[!0-9]*) refuse "BAUD=$BAUD is not a number" ;;
esac
ERASE=${ERASE:-0}
case "$ERASE" in
  0) erase=() ;;
  1) erase=(--erase-all) ;;
  *) refuse "ERASE=$ERASE: expected 0 or 1" ;;
esac
case "$FLASH_MODE" in
  keep | qio | qout | dio | dout) ;;
  *) refuse "FLASH_MODE=$FLASH_MODE: expected qio, qout, dio or dout" ;;
esac

if ! [ -x "$ESPTOOL" ] && ! command -v "$ESPTOOL" >/dev/null 2>&1; then
  refuse "esptool not found at $ESPTOOL (make deps installs it)"
fi

# The images and their addresses, sorted by address. Regions must be sector-aligned (4 KiB: the
# flash is erased per sector) and must not overlap, or one image would overwrite the other.
shopt -s nullglob
images=("$PREFIX"0x*.bin)
shopt -u nullglob
[ "${#images[@]}" -gt 0 ] || refuse "no image ${PREFIX}0x<address>.bin: run make firmware first"

regions=$(for image in "${images[@]}"; do
  address=${image#"$PREFIX"}
  address=${address%.bin}
  case "$address" in
    0x*[!0-9a-fA-F]* | 0x) refuse "$image: the part after the prefix is not a hex address" ;;
  esac
  printf '%d %s\n' "$((address))" "$image"
done | sort -n) || exit "$EXIT_REFUSED"

args=()
end=0
previous=
while read -r start image; do
  if [ $((start % 4096)) -ne 0 ]; then
    refuse "$image: address $(printf '0x%x' "$start") is not on a 4 KiB flash sector"
  fi
  if [ "$start" -lt "$end" ]; then
    refuse "$image overlaps $previous (which ends at $(printf '0x%x' "$end"))"
  fi
  size=$(stat -L -c %s "$image")
  [ "$size" -gt 0 ] || refuse "$image is empty"
  end=$((start + size))
  previous=$image
  args+=("$(printf '0x%05x' "$start")" "$image")
  info "$(printf '0x%05x' "$start")  $size bytes  $image"
done <<<"$regions"

cmd=("$ESPTOOL" --chip esp8266 --port "$PORT" --baud "$BAUD" write-flash "${erase[@]}" --flash-mode "$FLASH_MODE" "${args[@]}")
info "running: ${cmd[*]}"
if ! "${cmd[@]}"; then
  echo "flash-firmware: esptool failed: hold FLASH (GPIO0 low) while pressing RESET if the board did not answer, then flash again" >&2
  exit 1
fi
info "done: the console is $PORT at 115200 baud (e.g. picocom -b 115200 $PORT): boot banner, then the node's log"
