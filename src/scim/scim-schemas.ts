import SCIMMY from 'scimmy';

const { Attribute, SchemaDefinition } = SCIMMY.Types;

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE_USER_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const LIST_RESPONSE_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const PATCH_OP_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

/**
 * The attributes of a User trackgate keeps (RFC 7643 §4.1, the part an IdP's provisioning maps): what
 * /Schemas describes, what a request body is coerced to (anything else an IdP sends is dropped without
 * failing: phone numbers, addresses, the enterprise extension), and what PATCH paths may name.
 * `userName` is the person's email, compared case-insensitively.
 */
export const userSchema = new SchemaDefinition('User', USER_SCHEMA, 'A person of the organization', [
  new Attribute('string', 'userName', { required: true, uniqueness: 'server', caseExact: false, description: 'The person\'s email address: unique, compared case-insensitively.' }),
  new Attribute('complex', 'name', { description: 'The person\'s name.' }, [
    new Attribute('string', 'formatted', { description: 'The full name (read: given and family name, or the display name).' }),
    new Attribute('string', 'givenName'),
    new Attribute('string', 'familyName'),
  ]),
  new Attribute('string', 'displayName', { description: 'The name shown on trackgate\'s pages.' }),
  new Attribute('complex', 'emails', { multiValued: true, description: 'Email addresses; the primary (or work, or first) one must be the userName.' }, [
    new Attribute('string', 'value'),
    new Attribute('string', 'type', { canonicalValues: ['work', 'home', 'other'] }),
    new Attribute('boolean', 'primary'),
  ]),
  new Attribute('boolean', 'active', { description: 'false deactivates the person: every API key revoked, every browser session ended, on every instance within a second. true restores the account (revoked keys stay revoked).' }),
  new Attribute('complex', 'groups', { multiValued: true, mutable: false, returned: true, description: 'The teams the person is a member of (change them through /Groups).' }, [
    new Attribute('string', 'value', { mutable: false }),
    new Attribute('reference', '$ref', { mutable: false, referenceTypes: ['Group'] }),
    new Attribute('string', 'display', { mutable: false }),
  ]),
]);

/** A Group is a team of the organization (RFC 7643 §4.2): members are people (service accounts are not provisioned through SCIM). */
export const groupSchema = new SchemaDefinition('Group', GROUP_SCHEMA, 'A team of the organization', [
  new Attribute('string', 'displayName', { required: true, uniqueness: 'server', caseExact: false, description: 'The group\'s name at the IdP. A team created through SCIM gets a team name (a slug) made from it, which does not change when the group is renamed.' }),
  new Attribute('complex', 'members', { multiValued: true, description: 'The people in the team (SCIM user ids).' }, [
    new Attribute('string', 'value', { mutable: 'immutable' }),
    new Attribute('reference', '$ref', { mutable: 'immutable', referenceTypes: ['User'] }),
    new Attribute('string', 'display', { mutable: 'immutable' }),
    new Attribute('string', 'type', { mutable: 'immutable', canonicalValues: ['User'] }),
  ]),
]);
