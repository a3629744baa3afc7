/**
 * How requests are validated, shared by the server and the tests through `buildOptions`.
 * Bodies are validated strictly: no type coercion (`"k": "5"` is an error, not 5), no
 * silent removal of unknown properties, first error only. Querystrings, params and
 * headers are text on the wire, so they (and only they) are coerced.
 */
import AjvCompiler from '@fastify/ajv-compiler'
import type { FastifySchemaValidationError } from 'fastify'

// verbose: each error carries its parentSchema, so a wrong field's message can list the fields expected there
const BASE = { removeAdditional: false, useDefaults: true, allErrors: false, verbose: true } as const

type RouteDefinition = Parameters<ReturnType<AjvCompiler.BuildCompilerFromPool>>[0]

/** A validator factory that compiles body schemas without coercion and other parts with it. */
export function buildValidatorFactory (): AjvCompiler.BuildCompilerFromPool {
  const pool = AjvCompiler()
  return (externalSchemas, options) => {
    const custom = options?.mode === 'JTD' ? {} : options?.customOptions
    const shared = {
      ...(options?.plugins === undefined ? {} : { plugins: options.plugins }),
      ...(options?.onCreate === undefined ? {} : { onCreate: options.onCreate })
    }
    const strict = pool(externalSchemas, { ...shared, customOptions: { ...custom, ...BASE, coerceTypes: false } })
    const coercing = pool(externalSchemas, { ...shared, customOptions: { ...custom, ...BASE, coerceTypes: 'array' } })
    return (route: RouteDefinition) => route.httpPart === 'body' ? strict(route) : coercing(route)
  }
}

/** `; expected fields: a (required), b, c` from the object schema an error is about; '' when unknown */
function expectedFields (e: FastifySchemaValidationError): string {
  const parent = (e as { parentSchema?: { properties?: Record<string, unknown>, required?: string[] } }).parentSchema
  const names = Object.keys(parent?.properties ?? {})
  if (names.length === 0) return ''
  const required = new Set(parent?.required ?? [])
  return `; expected fields: ${names.map((n) => required.has(n) ? `${n} (required)` : n).join(', ')}`
}

/**
 * Formats validation errors as `<part><path> <message>`, e.g. `body/k must be >= 1`,
 * names the property for errors ajv reports without one (additional properties), and lists the
 * allowed values of an enum.
 */
export function formatSchemaErrors (errors: FastifySchemaValidationError[], dataVar: string): Error {
  const text = errors.map((e) => {
    let msg = `${dataVar}${e.instancePath} ${e.message ?? 'is invalid'}`
    const { additionalProperty: extra, allowedValues } = e.params as { additionalProperty?: unknown, allowedValues?: unknown }
    if (typeof extra === 'string') msg += `: '${extra}'`
    // an unknown or missing field: name the fields this object takes, so the right shape is one read away
    if (e.keyword === 'additionalProperties' || e.keyword === 'required') msg += expectedFields(e)
    // an enum: say which values are allowed
    if (Array.isArray(allowedValues)) msg += `: ${allowedValues.map((v) => JSON.stringify(v)).join(', ')}`
    return msg
  }).join(', ')
  return new Error(text)
}
