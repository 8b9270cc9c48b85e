"""A synthetic stand-in of the microservice's published tables and the documents view, for the
indexer's tests and benchmarks (not production code).

`synthetic_documents(conn, n)` builds `public.listings`, `public.listing_images` and the view
`public_search.listing_search_documents` (id bigint, document json) the indexer reads,
generated in SQL (fast at any size, and independent of the dbt models, which other work
changes). Ids are bigint: half of them above 2^32 (`BIG_ID` + n), as B2C ids are.
"""

from __future__ import annotations

import psycopg

BIG_ID = 5_000_000_000

DOCUMENTS_SQL = """
create schema if not exists public_search;
create table public.listings (
    id bigint primary key, uuid uuid not null, title text not null, description text,
    price numeric(10, 2) not null, currency text not null, status text not null, visibility text not null,
    source_type text not null, user_id bigint not null, city text,
    created_at timestamp not null, updated_at timestamp not null,
    latitude double precision, longitude double precision
);
create table public.listing_images (
    id bigint primary key, listing_id bigint not null, url text not null,
    is_primary boolean not null, display_order integer not null
);
create view public_search.listing_search_documents as
select l.id, row_to_json(d) as document
from public.listings l
cross join lateral (
    select
        l.id, l.uuid, l.source_type, l.user_id, l.title, l.description, l.price, l.currency, l.status,
        l.visibility, l.city,
        to_char(l.created_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as created_at,
        to_char(l.updated_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as updated_at,
        case when l.latitude is not null then json_build_object('lat', l.latitude, 'lon', l.longitude) end
            as location,
        coalesce((
            select array_to_json(array_agg(i order by i.display_order))
            from (
                select im.id, im.url, im.is_primary, im.display_order
                from public.listing_images im where im.listing_id = l.id
            ) i
        ), '[]'::json) as images
) d
order by l.id;
"""

FILL_SQL = """
insert into public.listings
select
    case when g % 2 = 0 then g else {big} + g end,
    md5(g::text)::uuid,
    'Listing ' || g || ' Ђ 😀 "q" \\ ',
    repeat('description of listing ' || g || '. ', {repeats}),
    (g % 100000) / 100.0,
    'RSD', 'active', 'public',
    case when g % 2 = 0 then 'c2c' else 'b2c' end,
    g % 1000, 'Beograd',
    timestamp '2024-01-01' + g * interval '1 second',
    timestamp '2024-06-01' + g * interval '1 second',
    case when g % 5 = 0 then null else 44.8 + (g % 100) / 1000.0 end,
    20.4
from generate_series({start}, {stop}) g;
insert into public.listing_images
select
    (case when g % 2 = 0 then g else {big} + g end) * 10 + k,
    case when g % 2 = 0 then g else {big} + g end,
    'https://img.example/' || g || '/' || k || '.jpg', k = 0, k
from generate_series({start}, {stop}) g, generate_series(0, 1) k
where g % 3 = 0;
"""


def synthetic_documents(conn: psycopg.Connection, n: int, description_repeats: int = 1, step: int = 200_000) -> None:
    """n listings (every third with two images) and the documents view, in `conn`'s database
    (autocommit); `description_repeats` makes the descriptions longer (documents larger)."""
    conn.execute(DOCUMENTS_SQL)
    for start in range(1, n + 1, step):
        stop = min(n, start + step - 1)
        conn.execute(FILL_SQL.format(big=BIG_ID, start=start, stop=stop, repeats=int(description_repeats)))
    conn.execute("create index on public.listing_images (listing_id)")
    conn.execute("analyze public.listings; analyze public.listing_images")
