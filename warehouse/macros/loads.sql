{# What the incremental models and the tests scoped to a build read: watermarks, taken
   when a model or test runs and written into its SQL as literals (a subquery there would
   hide the bound from the planner, which then reads whole tables). #}

{# When the newest sync that completed ended (dlt's `_dlt_loads`, the source `syncs`). A
   raw row's `_loaded_at` (its sync's start) at or before it was loaded by a completed
   sync; a later one belongs to a sync still running, or killed, which the incremental
   models leave for the next build. A timestamp literal, or null before any sync. #}
{% macro loaded_until() -%}
{{ return(orderlens.newest(source('orderlens', 'syncs'), 'inserted_at', 'status = 0')) }}
{%- endmacro %}

{# The largest `column` of `relation` (where `condition`), as a timestamp literal; `null`
   when the relation does not exist yet or has no row. #}
{% macro newest(relation, column, condition='1 = 1') -%}
{%- if not execute -%}{{ return('null') }}{%- endif -%}
{%- set found = adapter.get_relation(
    database=relation.database, schema=relation.schema, identifier=relation.identifier) -%}
{%- if found is none -%}{{ return('null') }}{%- endif -%}
{#- Read as text behind a marker, so that no type inference touches it. -#}
{%- set query -%}
select {{ dbt.concat(["'at '", dbt.cast('max(' ~ column ~ ')', dbt.type_string())]) }}
from {{ relation }} where {{ condition }}
{%- endset -%}
{%- set value = run_query(query).columns[0].values()[0] -%}
{%- if value is none -%}{{ return('null') }}{%- endif -%}
{{ return("cast('" ~ value[3:] ~ "' as " ~ orderlens.timestamptz() ~ ")") }}
{%- endmacro %}

{% macro timestamptz() %}{{ return(adapter.dispatch('timestamptz', 'orderlens')()) }}{% endmacro %}
{% macro default__timestamptz() %}timestamp with time zone{% endmacro %}
{% macro bigquery__timestamptz() %}timestamp{% endmacro %}

{# Whether this run's tests check every row: a full refresh, or `--vars '{checks: all}'`. #}
{% macro checks_every_row() -%}
{{ return(flags.FULL_REFRESH or var('checks', 'changed') == 'all') }}
{%- endmacro %}

{# The marts hold one service's figures: those of the dataset `built_from` names. A build
   from another dataset (a second service syncing into the same warehouse) would merge
   its orders into them: stopped, unless it replaces them all (--full-refresh). #}
{% macro require_one_dataset() -%}
{%- if execute and not flags.FULL_REFRESH -%}
    {%- set relation = orderlens.marts_relation('built_from') -%}
    {%- set found = adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier) -%}
    {%- if found is not none -%}
        {%- set rows = run_query('select dataset from ' ~ found).columns[0].values() -%}
        {%- set dataset = env_var('ORDERLENS_DATASET') -%}
        {%- if rows | length > 0 and rows[0] != dataset -%}
            {{ exceptions.raise_compiler_error(
                "the marts in " ~ relation.schema ~ " are built from dataset " ~ rows[0]
                ~ ", not " ~ dataset ~ ": build " ~ dataset ~ "'s in a schema of their own"
                ~ " (ORDERLENS_MARTS=name), or replace these with --full-refresh") }}
        {%- endif -%}
    {%- endif -%}
{%- endif -%}
{%- endmacro %}

{# A mart's relation, wherever the marts are built. #}
{% macro marts_relation(name) -%}
{{ return(api.Relation.create(
    database=target.database, schema=target.schema, identifier=name)) }}
{%- endmacro %}

{# Tests on tables that grow with orders check what the build changes, not all history
   again (a full check, with --full-refresh or `--vars '{checks: all}'`, and the first
   build check every row). A test's
   `where` names its scope (dbt documents overriding this macro for placeholders):
   - __not_built_yet__: raw or staged orders loaded since fct_orders was last built;
   - __built_last__: the rows of fct_orders this build wrote (stamped with the newest
     completed sync; none when it wrote none);
   - __full_checks_only__: every row in a full check (and the first build), none
     otherwise: tests on views that recompute the whole history to answer. #}
{% macro get_where_subquery(relation) -%}
{%- set where = config.get('where') -%}
{%- if not where -%}{{ return(relation) }}{%- endif -%}
{%- set every = orderlens.checks_every_row() -%}
{%- if '__' in where -%}
    {%- set built = 'null' if every else orderlens.newest(orderlens.marts_relation('fct_orders'), '_loaded_until') -%}
    {%- set until = orderlens.loaded_until() -%}
    {%- if built == 'null' -%}
        {%- set where = where | replace('__not_built_yet__', '1 = 1')
            | replace('__built_last__', '1 = 1') | replace('__full_checks_only__', '1 = 1') -%}
    {%- else -%}
        {%- set where = where | replace('__not_built_yet__', '_loaded_at > ' ~ built)
            | replace('__built_last__', '_loaded_until = ' ~ until)
            | replace('__full_checks_only__', '1 = 0') -%}
    {%- endif -%}
{%- endif -%}
{{ return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') }}
{%- endmacro %}

{# An incremental model's table as an earlier version of the project built it lacks the
   bookkeeping columns: say what to do, instead of failing on a missing column. Checked
   once a run, before anything runs (dbt_project.yml, on-run-start), unless it is a full
   refresh. #}
{% macro require_bookkeeping(relation, column) -%}
{%- if execute and not flags.FULL_REFRESH -%}
    {%- set found = adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier) -%}
    {%- set names = [] if found is none else adapter.get_columns_in_relation(found)
        | map(attribute='name') | map('lower') | list -%}
    {%- if found is not none and column not in names -%}
        {{ exceptions.raise_compiler_error(
            relation.identifier ~ " was built by an earlier version of this project (it has"
            ~ " no " ~ column ~ "): build once with --full-refresh"
            ~ " (make warehouse DBT_ARGS=--full-refresh)") }}
    {%- endif -%}
{%- endif -%}
{%- endmacro %}
