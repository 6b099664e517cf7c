"""What a read may use: the functions, types and operators known to change nothing.

This is the classifier's allow-list, kept as data in one place. A function that is not here is
not a read, whatever its name: a site's own `kill_idle()`, an extension's function, a function
a new PostgreSQL release adds. Names are PostgreSQL's, in `pg_catalog`; an entry is a name and
why it is harmless. Left out on purpose, so they are actions: anything that signals, locks,
sleeps, writes, changes settings or statistics, assigns a transaction id, touches WAL,
replication slots or origins, maintains indexes (brin_summarize_*, gin_clean_pending_list),
reads server files or directories (pg_read_*, pg_ls_*, pg_stat_file, pg_current_logfile,
pg_control_*), or executes a query given as text (query_to_xml, cursor_to_xml, table_to_xml,
ts_stat, ts_rewrite, dblink, ...).

The keyword lists at the end are PostgreSQL 18's (`SELECT word, catcode FROM pg_get_keywords()`).
"""

from __future__ import annotations

_AGGREGATES = {
    "count": "aggregate", "sum": "aggregate", "avg": "aggregate", "min": "aggregate",
    "max": "aggregate", "array_agg": "aggregate", "string_agg": "aggregate",
    "json_agg": "aggregate", "jsonb_agg": "aggregate", "json_object_agg": "aggregate",
    "jsonb_object_agg": "aggregate", "bool_and": "aggregate", "bool_or": "aggregate",
    "every": "aggregate", "bit_and": "aggregate", "bit_or": "aggregate", "any_value": "aggregate",
    "stddev": "aggregate", "stddev_pop": "aggregate", "stddev_samp": "aggregate",
    "variance": "aggregate", "var_pop": "aggregate", "var_samp": "aggregate",
    "percentile_cont": "ordered-set aggregate", "percentile_disc": "ordered-set aggregate",
    "mode": "ordered-set aggregate", "corr": "aggregate", "covar_pop": "aggregate",
    "covar_samp": "aggregate", "grouping": "GROUPING() of grouping sets",
}
_WINDOW = {
    "row_number": "window function", "rank": "window function", "dense_rank": "window function",
    "percent_rank": "window function", "cume_dist": "window function", "ntile": "window function",
    "lag": "window function", "lead": "window function", "first_value": "window function",
    "last_value": "window function", "nth_value": "window function",
}
_CONDITIONAL = {
    "coalesce": "conditional expression", "nullif": "conditional expression",
    "greatest": "conditional expression", "least": "conditional expression",
    "num_nulls": "counts arguments", "num_nonnulls": "counts arguments",
}
_MATH = {name: "arithmetic" for name in (
    "abs", "ceil", "ceiling", "floor", "round", "trunc", "mod", "power", "pow", "sqrt", "cbrt",
    "exp", "ln", "log", "log10", "sign", "div", "pi", "width_bucket", "scale", "gcd", "lcm",
    "degrees", "radians", "float8", "float4", "int4", "int8", "numeric",
)}
_STRING = {name: "string function" for name in (
    "length", "char_length", "character_length", "octet_length", "bit_length", "lower", "upper",
    "initcap", "left", "right", "substr", "substring", "position", "strpos", "replace",
    "translate", "split_part", "trim", "btrim", "ltrim", "rtrim", "lpad", "rpad", "concat",
    "concat_ws", "format", "reverse", "starts_with", "regexp_replace", "regexp_match",
    "regexp_matches", "regexp_split_to_array", "regexp_split_to_table", "regexp_like",
    "regexp_count", "regexp_substr", "regexp_instr", "quote_ident", "quote_literal",
    "quote_nullable", "to_hex", "md5", "encode", "decode", "chr", "ascii", "string_to_array",
    "array_to_string", "overlay", "normalize", "repeat", "text", "host", "abbrev",
)}
_DATETIME = {name: "date/time function" for name in (
    "now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "timeofday",
    "current_date", "current_time", "current_timestamp", "localtime", "localtimestamp",
    "age", "date_trunc", "date_part", "extract", "date_bin", "to_char", "to_timestamp",
    "to_date", "to_number", "make_interval", "make_timestamp", "make_timestamptz", "make_date",
    "make_time", "justify_interval", "justify_hours", "justify_days", "isfinite", "timezone",
)}
_ARRAY_JSON = {name: "array / JSON function" for name in (
    "array_length", "array_upper", "array_lower", "array_position", "array_positions",
    "array_remove", "array_append", "array_prepend", "array_cat", "array_dims", "array_ndims",
    "cardinality", "unnest", "generate_series", "generate_subscripts", "array_to_json",
    "to_json", "to_jsonb", "row_to_json", "json_build_object", "jsonb_build_object",
    "json_build_array", "jsonb_build_array", "json_object", "jsonb_object", "jsonb_pretty",
    "json_array_length", "jsonb_array_length", "json_each", "jsonb_each", "json_each_text",
    "jsonb_each_text", "json_array_elements", "jsonb_array_elements",
    "json_array_elements_text", "jsonb_array_elements_text", "json_extract_path",
    "jsonb_extract_path", "json_extract_path_text", "jsonb_extract_path_text", "json_typeof",
    "jsonb_typeof", "json_object_keys", "jsonb_object_keys", "jsonb_strip_nulls",
)}
_SIZES = {name: "size of a database object" for name in (
    "pg_size_pretty", "pg_size_bytes", "pg_relation_size", "pg_total_relation_size",
    "pg_table_size", "pg_indexes_size", "pg_database_size", "pg_tablespace_size",
    "pg_column_size", "pg_relation_filenode",
)}
_WAL = {name: "WAL position / recovery state (read)" for name in (
    "pg_current_wal_lsn", "pg_current_wal_insert_lsn", "pg_current_wal_flush_lsn",
    "pg_last_wal_receive_lsn", "pg_last_wal_replay_lsn", "pg_last_xact_replay_timestamp",
    "pg_wal_lsn_diff", "pg_is_in_recovery", "pg_is_wal_replay_paused",
    "pg_get_wal_replay_pause_state", "pg_walfile_name", "pg_walfile_name_offset",
)}
_ACTIVITY = {name: "session, lock or server state (read)" for name in (
    "pg_backend_pid", "pg_blocking_pids", "pg_safe_snapshot_blocking_pids", "pg_lock_status",
    "pg_postmaster_start_time", "pg_conf_load_time", "pg_trigger_depth", "pg_jit_available",
    "pg_notification_queue_usage", "pg_listening_channels", "inet_server_addr",
    "inet_server_port", "inet_client_addr", "inet_client_port", "version",
    "current_database", "current_schema", "current_schemas", "current_setting", "pg_typeof",
    "pg_my_temp_schema", "pg_is_other_temp_schema", "txid_current_snapshot",
    "pg_current_snapshot", "pg_snapshot_xmin", "pg_snapshot_xmax", "txid_snapshot_xmin",
    "txid_snapshot_xmax", "pg_current_xact_id_if_assigned", "txid_current_if_assigned",
    "mxid_age", "pg_xact_status", "txid_status", "pg_xact_commit_timestamp",
    "pg_last_committed_xact", "currval", "lastval", "pg_get_keywords",
)}
_CATALOG = {name: "catalog lookup" for name in (
    "pg_get_userbyid", "pg_get_indexdef", "pg_get_viewdef", "pg_get_constraintdef",
    "pg_get_triggerdef", "pg_get_functiondef", "pg_get_expr", "pg_get_function_arguments",
    "pg_get_function_result", "pg_get_function_identity_arguments", "pg_get_serial_sequence",
    "pg_get_partkeydef", "pg_get_statisticsobjdef", "pg_get_ruledef", "format_type",
    "obj_description", "col_description", "shobj_description", "to_regclass", "to_regproc",
    "to_regprocedure", "to_regtype", "to_regnamespace", "to_regrole", "has_table_privilege",
    "has_schema_privilege", "has_database_privilege", "has_function_privilege",
    "has_column_privilege", "has_sequence_privilege", "has_any_column_privilege",
    "pg_has_role", "pg_table_is_visible", "pg_function_is_visible", "pg_type_is_visible",
    "pg_encoding_to_char", "pg_char_to_encoding", "pg_index_column_has_property",
    "pg_indexam_has_property", "pg_index_has_property", "pg_tablespace_location",
    "pg_options_to_table", "pg_partition_tree", "pg_partition_root",
    "pg_partition_ancestors", "pg_describe_object", "pg_identify_object",
    "pg_relation_is_updatable", "pg_column_is_updatable", "pg_filenode_relation",
)}

FUNCTIONS: dict[str, str] = {
    **_AGGREGATES, **_WINDOW, **_CONDITIONAL, **_MATH, **_STRING, **_DATETIME, **_ARRAY_JSON,
    **_SIZES, **_WAL, **_ACTIVITY, **_CATALOG,
}

# SQL syntax that reads like a call but names no function in pg_catalog. Only the unquoted
# keyword is that syntax: a quoted or qualified "coalesce"(...) would be a site's own function.
SYNTAX_FUNCTIONS = frozenset("""
    coalesce nullif greatest least grouping trim current_date current_time current_timestamp
    localtime localtimestamp
""".split())

# Types a read may cast to or write a literal of (`'5 min'::interval`, `interval '5 min'`).
# A cast to any other type (a domain with a CHECK, a type with its own cast functions) may
# run code, so it is not a read.
TYPES = frozenset("""
    bigint int8 integer int int4 smallint int2 numeric decimal real float4 float float8 double
    boolean bool text varchar character char bpchar name oid regclass regproc
    regprocedure regtype regnamespace regrole regoper regoperator regconfig interval date time
    timestamp timestamptz timetz json jsonb uuid inet cidr macaddr bytea pg_lsn xid xid8 tid
    bit varbit money record anyelement
""".split())
# The types above that are grammar keywords, not pg_type names: only unquoted do they mean
# the built-in type.
TYPE_KEYWORDS = frozenset("real float integer bigint boolean double character int smallint decimal".split())
# Words that continue a type name: double precision, character varying, timestamp with time zone.
TYPE_WORDS = frozenset("precision varying with without time zone day hour minute second year month to".split())

# Built-in operators. Any other operator (a site's own `===`, OPERATOR(schema.op)) may run a
# function of its own, so it is not a read.
OPERATORS = frozenset("""
    = <> != < > <= >= + - * / % ^ || ~ ~* !~ !~* ~~ ~~* !~~ !~~* @> <@ && -> ->> #> #>> ? ?| ?&
    @? @@ |/ ||/ @ & | # << >> <-> :: := =>
""".split())

# Relations that are not for a runbook to read: password hashes and secrets, server files.
DENIED_RELATIONS = {
    "pg_authid": "holds password hashes",
    "pg_shadow": "holds password hashes",
    "pg_user_mapping": "holds foreign-server passwords",
    "pg_user_mappings": "holds foreign-server passwords",
    "pg_subscription": "holds connection strings with passwords",
    "pg_file_settings": "reads the server's configuration files",
    "pg_hba_file_rules": "reads the server's pg_hba.conf",
    "pg_ident_file_mappings": "reads the server's pg_ident.conf",
    "pg_largeobject": "reads large object data",
    "pg_statistic": "holds sampled column values",
}

# Reserved: never a function or column name unquoted.
RESERVED_KEYWORDS = frozenset("""
    all analyse analyze and any array as asc asymmetric both case cast check collate column
    constraint create current_catalog current_date current_role current_time current_timestamp
    current_user default deferrable desc distinct do else end except false fetch for foreign
    from grant group having in initially intersect into lateral leading limit localtime
    localtimestamp not null offset on only or order placing primary references returning
    select session_user some symmetric system_user table then to trailing true union unique
    user using variadic when where window with
""".split())
# Reserved, but may name a function or type (left, right, ...).
TYPE_FUNC_KEYWORDS = frozenset("""
    authorization binary collation concurrently cross current_schema freeze full ilike inner
    is isnull join left like natural notnull outer overlaps right similar tablesample verbose
""".split())
# Unreserved, but not a function or type name (coalesce, extract, ... use special syntax).
COLUMN_KEYWORDS = frozenset("""
    between bigint bit boolean char character coalesce dec decimal exists extract float
    greatest grouping inout int integer interval json json_array json_arrayagg json_exists
    json_object json_objectagg json_query json_scalar json_serialize json_table json_value
    least merge_action national nchar none normalize nullif numeric out overlay position
    precision real row setof smallint substring time timestamp treat trim values varchar
    xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi
    xmlroot xmlserialize xmltable
""".split())
# Unreserved: may also be an ordinary name.
UNRESERVED_KEYWORDS = frozenset("""
    abort absent absolute access action add admin after aggregate also alter always asensitive
    assertion assignment at atomic attach attribute backward before begin breadth by cache
    call called cascade cascaded catalog chain characteristics checkpoint class close cluster
    columns comment comments commit committed compression conditional configuration conflict
    connection constraints content continue conversion copy cost csv cube current cursor cycle
    data database day deallocate declare defaults deferred definer delete delimiter delimiters
    depends depth detach dictionary disable discard document domain double drop each empty
    enable encoding encrypted enforced enum error escape event exclude excluding exclusive
    execute explain expression extension external family filter finalize first following force
    format forward function functions generated global granted groups handler header hold hour
    identity if immediate immutable implicit import include including increment indent index
    indexes inherit inherits inline input insensitive insert instead invoker isolation keep
    key keys label language large last leakproof level listen load local location lock locked
    logged mapping match matched materialized maxvalue merge method minute minvalue mode month
    move name names nested new next nfc nfd nfkc nfkd no normalized nothing notify nowait
    nulls object objects of off oids old omit operator option options ordinality others over
    overriding owned owner parallel parameter parser partial partition passing password path
    period plan plans policy preceding prepare prepared preserve prior privileges procedural
    procedure procedures program publication quote quotes range read reassign recursive ref
    referencing refresh reindex relative release rename repeatable replace replica reset
    restart restrict return returns revoke role rollback rollup routine routines rows rule
    savepoint scalar schema schemas scroll search second security sequence sequences
    serializable server session set sets share show simple skip snapshot source sql stable
    standalone start statement statistics stdin stdout storage stored strict string strip
    subscription support sysid system tables tablespace target temp template temporary text
    ties transaction transform trigger truncate trusted type types uescape unbounded
    uncommitted unconditional unencrypted unknown unlisten unlogged until update vacuum valid
    validate validator value varying version view views virtual volatile whitespace within
    without work wrapper write xml year yes zone
""".split())
