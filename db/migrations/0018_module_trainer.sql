-- depends: 0017_billing
-- What a course roster names besides its attendees (OSHA 1910.1030(h)(2)): a summary of the
-- training's contents, and the person conducting it with their qualifications. Written by HR
-- through api.training_modules; a Classroom sync fills the trainer from the course's teacher.
alter table app.training_modules
    add column content_summary text,
    add column trainer text,
    add column trainer_qualifications text,
    add constraint training_modules_content_summary_at_most_4000_characters
        check (length(content_summary) <= 4000),
    add constraint training_modules_trainer_at_most_200_characters_on_one_line
        check (length(trainer) <= 200 and trainer !~ '[\x01-\x1f\x7f]'),
    add constraint training_modules_trainer_is_not_blank check (btrim(trainer) <> ''),
    add constraint training_modules_trainer_qualifications_at_most_2000_characters
        check (length(trainer_qualifications) <= 2000);

