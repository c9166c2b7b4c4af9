# The radio board's Raspberry Pi settings (config.txt lines, device tree overlays), chosen by TMC_RADIO_BOARD
# from the TMC_RPI_CONFIG / TMC_RPI_OVERLAYS flags that conf/tmc-local.conf defines. Inherited globally
# (INHERIT) because meta-raspberrypi reads RPI_EXTRA_CONFIG and RPI_KERNEL_DEVICETREE_OVERLAYS in several
# recipes (rpi-config, the kernel, the boot files).

def tmc_board_flag(d, var):
    board = d.getVar('TMC_RADIO_BOARD')
    value = d.getVarFlag(var, board)
    if value is None:
        known = ' '.join(sorted(f for f in (d.getVarFlags(var) or {}) if not f.startswith('_')))
        bb.fatal('TMC_RADIO_BOARD = "%s": no %s[%s] (known boards: %s); see meta-tmc/conf/tmc-local.conf'
                 % (board, var, board, known))
    return value
