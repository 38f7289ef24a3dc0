import type { Migration } from 'kysely';
import type { DialectCaps } from '../dialect.ts';
import { migration001 } from './001_initial.ts';
import { migration002 } from './002_gateway.ts';
import { migration003 } from './003_sso.ts';
import { migration004 } from './004_login_links.ts';
import { migration005 } from './005_key_successor.ts';
import { migration006 } from './006_entity_name_tombstones.ts';
import { migration007 } from './007_login_tx_binding.ts';
import { migration008 } from './008_cache_invalidations.ts';
import { migration009 } from './009_scim.ts';
import { migration010 } from './010_federation.ts';
import { migration011 } from './011_instance_settings.ts';
import { migration012 } from './012_login_tx_test.ts';
import { migration013 } from './013_saml.ts';

/** Every migration, in order. Names sort; never rename or edit a released one. */
export function migrations(caps: DialectCaps): Record<string, Migration> {
  return {
    '001_initial': migration001(caps),
    '002_gateway': migration002(caps),
    '003_sso': migration003(caps),
    '004_login_links': migration004(caps),
    '005_key_successor': migration005(caps),
    '006_entity_name_tombstones': migration006(caps),
    '007_login_tx_binding': migration007(caps),
    '008_cache_invalidations': migration008(caps),
    '009_scim': migration009(caps),
    '010_federation': migration010(caps),
    '011_instance_settings': migration011(caps),
    '012_login_tx_test': migration012(caps),
    '013_saml': migration013(caps),
  };
}
