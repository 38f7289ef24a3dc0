import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Actor } from '../auth/actor.ts';
import type { AuditRepository, AuditRow } from './audit.repository.ts';
import type { auditEventOut } from './audit.responses.ts';

export interface AuditEntry {
  orgId: string | null;
  action: string;
  targetType: string;
  targetId?: string | null;
  targetName?: string | null;
  details?: Record<string, unknown>;
}

/** The API's answer for an audit event: its response schema's type, so that the two cannot drift. */
export type AuditEventView = z.output<typeof auditEventOut>;

/** Writes audit events inside the caller's transaction, so an action and its record commit together. */
export class AuditService {
  async record(repos: { audit: AuditRepository }, actor: Actor | 'cli' | { type: string; id: string | null; name: string | null; ip?: string | null; requestId?: string | null }, entry: AuditEntry): Promise<void> {
    const who =
      actor === 'cli'
        ? { type: 'operator', id: null, name: 'trackgate-cli', ip: null, requestId: null }
        : 'principal' in actor
          ? { type: actor.principal.type, id: actor.principal.id, name: actor.principal.username, ip: actor.ip, requestId: actor.requestId }
          : { type: actor.type, id: actor.id, name: actor.name, ip: actor.ip ?? null, requestId: actor.requestId ?? null };
    await repos.audit.insert({
      id: randomUUID(),
      org_id: entry.orgId,
      actor_type: who.type,
      actor_id: who.id,
      actor_name: who.name,
      action: entry.action,
      target_type: entry.targetType,
      target_id: entry.targetId ?? null,
      target_name: entry.targetName ?? null,
      ip: who.ip,
      request_id: who.requestId,
      details: entry.details ? JSON.stringify(entry.details) : null,
      created_at: new Date().toISOString(),
    });
  }

  static view(row: AuditRow): AuditEventView {
    return {
      id: row.id,
      action: row.action,
      actor: { type: row.actor_type, id: row.actor_id, name: row.actor_name },
      target: { type: row.target_type, id: row.target_id, name: row.target_name },
      ip: row.ip,
      request_id: row.request_id,
      details: row.details ? (JSON.parse(row.details) as Record<string, unknown>) : null,
      created_at: row.created_at,
      cursor: Number(row.seq),
    };
  }
}
