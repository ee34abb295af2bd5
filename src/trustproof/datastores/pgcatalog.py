"""Reading what a PostgreSQL database really grants, from its catalogs (`read_catalog`).

Run as the admin over the private socket, in one read-only transaction, after schema and seed.
Every privilege the given roles and PUBLIC hold, whatever created it (the schema file, the seed,
a default privilege, a role membership):

* ACLs exploded with ``aclexplode`` — relations (tables, views, materialized views, sequences,
  foreign tables), columns, schemas, functions and procedures, databases. A NULL ACL means the
  built-in default, so ``acldefault`` stands in for it: that is how PUBLIC's default CONNECT and
  TEMPORARY on a database and EXECUTE on a function show up (the comparison knows them);
* ownership (an owner holds every privilege on the object, and can grant them);
* role attributes (``pg_authid``: SUPERUSER, CREATEROLE, CREATEDB, BYPASSRLS, REPLICATION, and
  whether a password is set) and memberships (``pg_auth_members``);
* default privileges (``pg_default_acl``): grants on objects not created yet;
* anything else a role appears in the ACL of (types, languages, large objects, foreign servers,
  tablespaces, parameters…): the shared dependency catalog ``pg_shdepend`` records every role an
  ACL names or an object is owned by, named with ``pg_describe_object``.

System schemas (``pg_catalog``, ``information_schema``, ``pg_toast``…) are left out: what PUBLIC
holds there is PostgreSQL's own. Also read: ``pg_hba_file_rules`` (the ``pg_hba.conf`` in force)
and the security settings in `SETTINGS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType
from typing import Any, LiteralString, cast

import psycopg

from trustproof.view.db_catalog import PUBLIC, DbCatalog, HbaRule, Holding, ObjectKind

SETTINGS = (
    "ssl",
    "password_encryption",
    "ssl_min_protocol_version",
    "listen_addresses",
)

_WHO = "CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END"
_ASKED = f"({_WHO}) = ANY(%(names)s)"
_USER_SCHEMA = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'"
_RELKIND = (
    "CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' "
    "WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'table' END"
)
_QUALIFIED = "quote_ident(n.nspname) || '.' || quote_ident(c.relname)"

QUERIES: tuple[LiteralString, ...] = (
    # relations
    f"""SELECT {_WHO}, {_RELKIND}, {_QUALIFIED}, a.privilege_type, a.is_grantable, ''
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL aclexplode(coalesce(c.relacl,
        acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {_USER_SCHEMA}
      AND a.grantee <> c.relowner AND {_ASKED}""",  # noqa: S608 (constant fragments)
    # columns (a NULL column ACL grants nothing beyond the table's)
    f"""SELECT {_WHO}, 'column', {_QUALIFIED} || '.' || quote_ident(att.attname),
        a.privilege_type, a.is_grantable, ''
    FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL aclexplode(att.attacl) a
    WHERE att.attacl IS NOT NULL AND att.attnum > 0 AND NOT att.attisdropped AND {_USER_SCHEMA}
      AND {_ASKED}""",  # noqa: S608 (constant fragments)
    # schemas
    f"""SELECT {_WHO}, 'schema', quote_ident(n.nspname), a.privilege_type, a.is_grantable, ''
    FROM pg_namespace n
    CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
    WHERE {_USER_SCHEMA} AND a.grantee <> n.nspowner AND {_ASKED}""",  # noqa: S608
    # functions and procedures
    f"""SELECT {_WHO}, CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
        p.oid::regprocedure::text, a.privilege_type, a.is_grantable,
        CASE WHEN p.prosecdef THEN 'SECURITY DEFINER' ELSE '' END
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
    WHERE {_USER_SCHEMA} AND a.grantee <> p.proowner AND {_ASKED}""",  # noqa: S608
    # databases (all of them: pg_database is shared)
    f"""SELECT {_WHO}, 'database', quote_ident(d.datname), a.privilege_type, a.is_grantable, ''
    FROM pg_database d
    CROSS JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
    WHERE a.grantee <> d.datdba AND {_ASKED}""",  # noqa: S608
    # ownership
    f"""SELECT pg_get_userbyid(c.relowner), {_RELKIND}, {_QUALIFIED}, 'OWNER', true, ''
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {_USER_SCHEMA}
      AND pg_get_userbyid(c.relowner) = ANY(%(names)s)
    UNION ALL
    SELECT pg_get_userbyid(n.nspowner), 'schema', quote_ident(n.nspname), 'OWNER', true, ''
    FROM pg_namespace n WHERE pg_get_userbyid(n.nspowner) = ANY(%(names)s)
    UNION ALL
    SELECT pg_get_userbyid(p.proowner), 'function', p.oid::regprocedure::text, 'OWNER', true, ''
    FROM pg_proc p WHERE pg_get_userbyid(p.proowner) = ANY(%(names)s)
    UNION ALL
    SELECT pg_get_userbyid(d.datdba), 'database', quote_ident(d.datname), 'OWNER', true, ''
    FROM pg_database d WHERE pg_get_userbyid(d.datdba) = ANY(%(names)s)""",  # noqa: S608
    # role attributes
    """SELECT r.rolname, 'role', r.rolname, attribute, false, ''
    FROM pg_authid r CROSS JOIN LATERAL (VALUES
        ('SUPERUSER', r.rolsuper), ('CREATEROLE', r.rolcreaterole), ('CREATEDB', r.rolcreatedb),
        ('BYPASSRLS', r.rolbypassrls), ('REPLICATION', r.rolreplication),
        ('PASSWORD', r.rolpassword IS NOT NULL)) AS held(attribute, yes)
    WHERE held.yes AND r.rolname = ANY(%(names)s)""",
    # memberships
    """SELECT pg_get_userbyid(m.member), 'role', pg_get_userbyid(m.roleid), 'MEMBER',
        m.admin_option, ''
    FROM pg_auth_members m WHERE pg_get_userbyid(m.member) = ANY(%(names)s)""",
    # default privileges
    f"""SELECT {_WHO}, 'default privilege',
        CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences'
            WHEN 'f' THEN 'functions' WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas'
            ELSE d.defaclobjtype::text END
        || ' created by ' || pg_get_userbyid(d.defaclrole)
        || CASE WHEN d.defaclnamespace = 0 THEN ' in any schema'
            ELSE ' in schema ' || d.defaclnamespace::regnamespace::text END,
        a.privilege_type, a.is_grantable, ''
    FROM pg_default_acl d CROSS JOIN LATERAL aclexplode(d.defaclacl) a
    WHERE a.grantee <> d.defaclrole AND {_ASKED}""",  # noqa: S608
    # anything else a role is named in the ACL of, or owns
    """SELECT pg_get_userbyid(s.refobjid), 'object',
        pg_describe_object(s.classid, s.objid, s.objsubid),
        CASE s.deptype WHEN 'o' THEN 'OWNER' ELSE 'PRIVILEGES' END, false, ''
    FROM pg_shdepend s
    WHERE s.refclassid = 'pg_authid'::regclass AND s.deptype IN ('a', 'o')
      AND s.dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
      AND s.classid NOT IN ('pg_class'::regclass, 'pg_namespace'::regclass,
          'pg_proc'::regclass, 'pg_database'::regclass, 'pg_default_acl'::regclass)
      AND pg_get_userbyid(s.refobjid) = ANY(%(names)s)""",
)

OWNED_SEQUENCES: LiteralString = f"""\
SELECT quote_ident(sn.nspname) || '.' || quote_ident(s.relname), {_QUALIFIED}
FROM pg_depend dep
JOIN pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class c ON c.oid = dep.refobjid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass
  AND dep.deptype = 'a' AND {_USER_SCHEMA}"""  # noqa: S608 (constant fragments)

HBA_RULES: LiteralString = """\
SELECT line_number, type, coalesce(database, '{}'), coalesce(user_name, '{}'),
    coalesce(address, ''), coalesce(netmask, ''), coalesce(auth_method, ''),
    coalesce(options, '{}'), coalesce(error, '')
FROM pg_hba_file_rules ORDER BY line_number"""


def read_catalog(conn: psycopg.Connection[Any], roles: Sequence[str]) -> DbCatalog:
    """Everything `roles` and PUBLIC hold in the database `conn` is connected to (as a
    superuser), plus the effective ``pg_hba.conf`` and settings. Raises `psycopg.Error`."""
    names = [*roles, PUBLIC]
    holdings: set[Holding] = set()
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        for query in QUERIES:
            for grantee, kind, name, privilege, grantable, detail in conn.execute(
                query, {"names": names}
            ):
                holdings.add(
                    Holding(
                        str(grantee),
                        cast(ObjectKind, kind),
                        str(name),
                        str(privilege),
                        bool(grantable) and privilege not in ("OWNER",),
                        str(detail),
                    )
                )
        owned = {str(seq): str(table) for seq, table in conn.execute(OWNED_SEQUENCES)}
        hba = tuple(_hba_rule(row) for row in conn.execute(HBA_RULES))
        settings = {
            str(name): str(value)
            for name, value in conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(SETTINGS),)
            )
        }
        database_row = conn.execute("SELECT current_database()").fetchone()
    ordered = tuple(sorted(holdings, key=lambda h: (h.grantee, h.kind, h.name, h.privilege)))
    return DbCatalog(
        "read",
        database=str(database_row[0]) if database_row else "",
        holdings=ordered,
        owned_sequences=MappingProxyType(owned),
        hba=hba,
        settings=MappingProxyType(settings),
        sent=(
            f"read the catalogs of database {database_row[0] if database_row else '?'} "
            f"(privileges of {', '.join(names)}; pg_hba_file_rules; pg_settings)"
        ),
    )


def _hba_rule(row: tuple[Any, ...]) -> HbaRule:
    line, kind, databases, users, address, netmask, method, options, error = row
    where = f"{address}/{netmask}" if address and netmask else str(address)
    return HbaRule(
        int(line),
        str(kind or ""),
        tuple(map(str, databases)),
        tuple(map(str, users)),
        where,
        str(method),
        tuple(map(str, options)),
        str(error),
    )
