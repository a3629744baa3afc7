/** The machine a section ran on, as the report names it. */
import os from 'node:os'

export interface MachineInfo {
  cpu: string
  cores: number
  ramGiB: number
  node: string
  platform: string
  /** 1-minute load average when the section started: another busy process skews every figure */
  load1: number
}

export function machineInfo (): MachineInfo {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    ramGiB: Math.round(os.totalmem() / 2 ** 30 * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    load1: Math.round(os.loadavg()[0]! * 100) / 100
  }
}

export function describeMachine (m: MachineInfo): string {
  return `${m.cpu}, ${m.cores} cores, ${m.ramGiB} GiB RAM, Node ${m.node}, ${m.platform}; load average at start ${m.load1}`
}
